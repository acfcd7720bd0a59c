"""Train the packaged sentiment models (vigie/data/sentiment_{fr,en}.json.gz), offline.

Usage (from the repository root):

    pip download --no-deps --no-binary :all: -d /tmp/lexicons vaderSentiment-fr==1.3.4
    .venv/bin/python tools/train_sentiment.py /work/shared/bench/sentiment_dev \\
        --lexicon-archive /tmp/lexicons/vaderSentiment_fr-1.3.4.tar.gz

The lexicons come from that sdist (MIT; C.J. Hutto's VADER lexicon and its French translation
by DEPREZ Olivier and EK Thomas); only their text files are read, none of its code runs, so
its GPL dependency fuzzywuzzy is never installed. Training needs numpy and scipy (L-BFGS), both
in the project's environment; scoring then needs numpy only.

Model: multinomial logistic regression, L2-regularised, over binary sparse features (words
marked for negation, word bigrams, char 3-5-grams; min document frequency 2; each row L2
normalised) plus dense lexicon features. The regularisation strength is chosen by stratified
5-fold cross-validation on train (macro-F1); val is scored once, after the final fit on all of
train. Everything is deterministic (fixed fold seed, deterministic L-BFGS from zeros).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.sparse

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from vigie.sentiment import (  # noqa: E402  (the repository root must be importable first)
    DENSE_FEATURE_NAMES,
    MODEL_FORMAT_VERSION,
    Token,
    dense_features,
    model_resource_name,
    sparse_features,
    tokenise,
)

LEXICON_ARCHIVE_SHA256 = "615af9a3eff0717a63941073801668e384610a2225622dc1f8d3ff0c0958cd34"
LEXICON_MEMBERS = {
    "en": "vaderSentiment_fr-1.3.4/vaderSentiment_fr/vader_lexicon.txt",
    "fr": "vaderSentiment_fr-1.3.4/vaderSentiment_fr/fr_lexicon.txt",
    "emoji": "vaderSentiment_fr-1.3.4/vaderSentiment_fr/emoji_utf8_lexicon.txt",
}
FOLD_SEED = 20240514
N_FOLDS = 5
MIN_DOCUMENT_FREQUENCY = 2
# Dense lexicon features are scaled up so the shared L2 penalty shrinks them less than the
# thousands of sparse ones (chosen once by CV on train, both languages agreed).
DENSE_SCALE = 2.0
L2_GRID = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
MAX_ITERATIONS = 500
N_CLASSES = 3


def read_split(data_dir: Path, lang: str, split: str) -> tuple[list[str], npt.NDArray[np.int64]]:
    labels = [int(line) for line in (data_dir / lang / f"{split}_labels.txt").read_text().split()]
    texts = (data_dir / lang / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    return texts[: len(labels)], np.asarray(labels, dtype=np.int64)


def read_lexicons(archive_path: Path) -> dict[str, dict[str, float]]:
    """Word -> valence (-4..4) per language, keys normalised like the tokeniser's output."""
    digest = hashlib.sha256(archive_path.read_bytes()).hexdigest()
    if digest != LEXICON_ARCHIVE_SHA256:
        raise SystemExit(f"{archive_path}: unexpected sha256 {digest}")
    with tarfile.open(archive_path) as archive:

        def member_text(name: str) -> str:
            extracted = archive.extractfile(LEXICON_MEMBERS[name])
            assert extracted is not None
            return extracted.read().decode("utf-8")

        english = _single_words(
            (fields[0], float(fields[1]))
            for fields in (line.split("\t") for line in member_text("en").splitlines())
            if len(fields) >= 2
        )
        french = _single_words(
            (word, float(valence))
            for word, _, valence in (
                line.rpartition("->") for line in member_text("fr").splitlines() if "->" in line
            )
        )
        emoji = _emoji_valences(member_text("emoji"), english)
    return {"en": {**emoji, **english}, "fr": {**emoji, **french}}


def _single_words(entries: Any) -> dict[str, float]:
    lexicon: dict[str, float] = {}
    for word, valence in entries:
        tokens = tokenise(word)
        # Emoticons and multi-word entries never match one token; the tokeniser handles faces.
        if len(tokens) == 1 and tokens[0].kind == "word":
            lexicon.setdefault(tokens[0].text, valence)
    return lexicon


def _emoji_valences(emoji_lexicon: str, english: dict[str, float]) -> dict[str, float]:
    """An emoji's valence: the mean valence of the English words of its description."""
    valences: dict[str, float] = {}
    for line in emoji_lexicon.splitlines():
        emoji, _, description = line.partition("\t")
        scored = [english[word] for word in description.lower().split() if word in english]
        if len(emoji) == 1 and scored:
            valences[emoji] = round(sum(scored) / len(scored), 3)
    return valences


class FeatureMatrixBuilder:
    """Featurises texts once; builds the design matrix for any vocabulary."""

    def __init__(self, texts: Sequence[str], lexicon: dict[str, float]) -> None:
        token_lists: list[list[Token]] = [tokenise(text) for text in texts]
        self.sparse = [sparse_features(tokens) for tokens in token_lists]
        self.dense = np.asarray([dense_features(tokens, lexicon) for tokens in token_lists])

    def vocabulary(self, rows: npt.NDArray[np.intp]) -> list[str]:
        counts = Counter(feature for row in rows for feature in self.sparse[row])
        return sorted(f for f, count in counts.items() if count >= MIN_DOCUMENT_FREQUENCY)

    def matrix(self, rows: npt.NDArray[np.intp], vocabulary: list[str]) -> scipy.sparse.csr_matrix:
        index = {feature: position for position, feature in enumerate(vocabulary)}
        data: list[float] = []
        columns: list[int] = []
        row_starts = [0]
        for row in rows:
            present = sorted(index[f] for f in self.sparse[row] if f in index)
            weight = 1.0 / np.sqrt(len(present)) if present else 0.0  # matches the scorer
            columns.extend(present)
            data.extend([weight] * len(present))
            dense_values = self.dense[row] * DENSE_SCALE
            columns.extend(range(len(vocabulary), len(vocabulary) + len(dense_values)))
            data.extend(dense_values.tolist())
            row_starts.append(len(columns))
        shape = (len(rows), len(vocabulary) + self.dense.shape[1])
        return scipy.sparse.csr_matrix((data, columns, row_starts), shape=shape)


def fit_logistic_regression(
    design: scipy.sparse.csr_matrix, labels: npt.NDArray[np.int64], l2: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Multinomial logistic regression (bias unpenalised) by L-BFGS; returns (weights, bias)."""
    n_rows, n_columns = design.shape
    one_hot = np.eye(N_CLASSES)[labels]

    def loss_and_gradient(flat: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        weights = flat[: n_columns * N_CLASSES].reshape(n_columns, N_CLASSES)
        bias = flat[n_columns * N_CLASSES :]
        logits = design @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -float(np.sum(one_hot * log_probabilities)) / n_rows
        loss += 0.5 * l2 * float(np.sum(weights * weights))
        residual = (np.exp(log_probabilities) - one_hot) / n_rows
        weight_gradient = design.T @ residual + l2 * weights
        return loss, np.concatenate([np.asarray(weight_gradient).ravel(), residual.sum(axis=0)])

    start = np.zeros(n_columns * N_CLASSES + N_CLASSES)
    solution = scipy.optimize.minimize(
        loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS}
    )
    flat: npt.NDArray[np.float64] = solution.x
    n_weights = n_columns * N_CLASSES
    return flat[:n_weights].reshape(n_columns, N_CLASSES), flat[n_weights:]


def macro_f1(truth: npt.NDArray[np.int64], predicted: npt.NDArray[np.int64]) -> float:
    scores = []
    for label in range(N_CLASSES):
        true_positives = int(np.sum((predicted == label) & (truth == label)))
        false_positives = int(np.sum((predicted == label) & (truth != label)))
        false_negatives = int(np.sum((predicted != label) & (truth == label)))
        denominator = 2 * true_positives + false_positives + false_negatives
        scores.append(2 * true_positives / denominator if denominator else 0.0)
    return float(np.mean(scores))


def stratified_folds(labels: npt.NDArray[np.int64]) -> list[npt.NDArray[np.intp]]:
    generator = np.random.default_rng(FOLD_SEED)
    folds: list[list[int]] = [[] for _ in range(N_FOLDS)]
    for label in range(N_CLASSES):
        members = np.flatnonzero(labels == label)
        generator.shuffle(members)
        for position, row in enumerate(members):
            folds[position % N_FOLDS].append(int(row))
    return [np.asarray(sorted(fold), dtype=np.intp) for fold in folds]


def predict(
    design: scipy.sparse.csr_matrix, weights: npt.NDArray[np.float64], bias: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    predicted: npt.NDArray[np.int64] = np.asarray(design @ weights + bias).argmax(axis=1)
    return predicted


def cross_validate(
    builder: FeatureMatrixBuilder, labels: npt.NDArray[np.int64], l2: float
) -> list[float]:
    folds = stratified_folds(labels)
    scores = []
    for held_out in range(N_FOLDS):
        train_rows = np.concatenate([fold for i, fold in enumerate(folds) if i != held_out])
        vocabulary = builder.vocabulary(train_rows)
        weights, bias = fit_logistic_regression(
            builder.matrix(train_rows, vocabulary), labels[train_rows], l2
        )
        test_rows = folds[held_out]
        predicted = predict(builder.matrix(test_rows, vocabulary), weights, bias)
        scores.append(macro_f1(labels[test_rows], predicted))
    return scores


def train_language(
    data_dir: Path, lang: str, lexicon: dict[str, float], output_dir: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    train_texts, train_labels = read_split(data_dir, lang, "train")
    builder = FeatureMatrixBuilder(train_texts, lexicon)
    cv_scores = {l2: cross_validate(builder, train_labels, l2) for l2 in L2_GRID}
    for l2, scores in cv_scores.items():
        print(f"{lang} l2={l2:g}: CV macro-F1 {np.mean(scores):.4f} ± {np.std(scores):.4f}")
    best_l2 = max(L2_GRID, key=lambda l2: float(np.mean(cv_scores[l2])))

    all_rows = np.arange(len(train_texts), dtype=np.intp)
    vocabulary = builder.vocabulary(all_rows)
    weights, bias = fit_logistic_regression(
        builder.matrix(all_rows, vocabulary), train_labels, best_l2
    )

    val_texts, val_labels = read_split(data_dir, lang, "val")
    val_builder = FeatureMatrixBuilder(val_texts, lexicon)
    val_f1 = macro_f1(
        val_labels,
        predict(val_builder.matrix(np.arange(len(val_texts)), vocabulary), weights, bias),
    )
    summary = {
        "l2": best_l2,
        "cv_macro_f1": round(float(np.mean(cv_scores[best_l2])), 4),
        "cv_macro_f1_std": round(float(np.std(cv_scores[best_l2])), 4),
        "val_macro_f1": round(val_f1, 4),
        "train_size": len(train_texts),
        "features": len(vocabulary),
    }
    print(f"{lang}: chose l2={best_l2:g}; val macro-F1 {val_f1:.4f} ({summary})")

    n_sparse = len(vocabulary)
    payload = {
        "format": MODEL_FORMAT_VERSION,
        "lang": lang,
        "labels": ["negative", "neutral", "positive"],
        "vocabulary": vocabulary,
        # 4 decimals: far below the weights' own uncertainty, and halves the file.
        "sparse_weights": np.round(weights[:n_sparse], 4).ravel().tolist(),
        "dense_feature_names": list(DENSE_FEATURE_NAMES),
        "dense_weights": np.round(weights[n_sparse:], 6).ravel().tolist(),
        "dense_scale": DENSE_SCALE,
        "bias": np.round(bias, 6).tolist(),
        "lexicon": dict(sorted(lexicon.items())),
        "training": summary,
        "licence": "lexicon: VADER (MIT, C.J. Hutto) and vaderSentiment-fr 1.3.4 (MIT)",
    }
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    target = output_dir / model_resource_name(lang)
    # mtime=0: the same training run writes byte-identical files.
    target.write_bytes(gzip.compress(encoded, compresslevel=9, mtime=0))
    print(
        f"{lang}: wrote {target} ({target.stat().st_size:,} bytes) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path, help="folder with {en,fr}/{train,val}_*.txt")
    parser.add_argument(
        "--lexicon-archive",
        type=Path,
        required=True,
        help="vaderSentiment_fr-1.3.4.tar.gz (see the module docstring)",
    )
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "vigie" / "data")
    parser.add_argument("--langs", nargs="+", default=["fr", "en"], choices=["fr", "en"])
    arguments = parser.parse_args(argv)
    lexicons = read_lexicons(arguments.lexicon_archive)
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    for lang in arguments.langs:
        train_language(arguments.data_dir, lang, lexicons[lang], arguments.output_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
