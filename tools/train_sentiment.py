"""Train the packaged sentiment models (vigie/data/sentiment_{fr,en}.json.gz), offline.

Usage (from the repository root; the dev set sits beside the repository):

    .venv/bin/python tools/train_sentiment.py ../shared/bench/sentiment_dev

Data: the dev set's train split only (val is scored once, after every choice), and the lexicons
of tools/sentiment_lexicons/: the VADER lexicon (MIT, C.J. Hutto) and its French translation
from vaderSentiment-fr 1.3.4 (MIT, DEPREZ Olivier and EK Thomas), as the first models embedded
them (vader_{fr,en}.json.gz), plus hand-written valences of news words (additions.tsv); French
entries are extended to their feminine and plural forms. Nothing is downloaded. Training needs
numpy and scipy (L-BFGS-B), both in the project's environment; scoring then needs numpy only.

Model: multinomial logistic regression, L2-regularised, over binary sparse features (words
marked for negation, word bigrams, char 3-5-grams; min document frequency 2; each row L2
normalised) plus dense lexicon features, whose positive-vs-negative effect is constrained to
the lexicon's sign (MONOTONE_DENSE_FEATURES). The regularisation strength is chosen by
stratified 5-fold cross-validation on train (macro-F1), then the neutral class's threshold (an
offset of its logit) on the out-of-fold logits; the CV figure reported chooses that offset on
four folds and scores the fifth. Everything is deterministic (fixed fold seed, L-BFGS from zeros).

--naive-bayes trains NB-LR instead (Wang & Manning 2012): each sparse weight's L2 penalty is
divided by the square of its feature's log-count ratio for that class (plus a floor), which is
the same fit as the LR on NB-scaled features; the model file and the scorer are unchanged.

--blend trains both and ships their average, share * LR + (1 - share) * NB-LR: logits are linear
in the weights, so that is one model of the same format. The two L2 strengths, the share and the
neutral offset are chosen together on the out-of-fold logits; the CV figure reported makes that
whole choice on four folds and scores the fifth.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
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

LEXICON_DIR = REPO_ROOT / "tools" / "sentiment_lexicons"
FOLD_SEED = 20240514
N_FOLDS = 5
MIN_DOCUMENT_FREQUENCY = 2
# Dense lexicon features are scaled up so the shared L2 penalty shrinks them less than the
# thousands of sparse ones (chosen once by CV on train, both languages agreed).
DENSE_SCALE = 2.0
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3)
# NB-LR's penalty factors are mostly above 1: its grid sits lower.
NB_L2_GRID = (3e-5, 1e-4, 3e-4, 1e-3)
# NB-LR (naive_bayes_penalty): add-one smoothing of the counts, and the least scale a feature
# keeps when it is as frequent in every class (its weight is then penalised 100 times more).
NB_SMOOTHING = 1.0
NB_PENALTY_FLOOR = 0.1
# --blend: the plain LR's share of the averaged model (1 and 0 are the plain models).
BLEND_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_ITERATIONS = 500
N_CLASSES = 3


def read_split(data_dir: Path, lang: str, split: str) -> tuple[list[str], npt.NDArray[np.int64]]:
    labels = [int(line) for line in (data_dir / lang / f"{split}_labels.txt").read_text().split()]
    texts = (data_dir / lang / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    return texts[: len(labels)], np.asarray(labels, dtype=np.int64)


def read_lexicons(lexicon_dir: Path = LEXICON_DIR) -> dict[str, dict[str, float]]:
    """Word -> valence (-4..4) per language, keys normalised like the tokeniser's output.

    The VADER lexicons (vader_{fr,en}.json.gz, as the first models embedded them), then the
    hand-written additions (additions.tsv), French entries extended to their feminine and
    plural forms.
    """
    lexicons: dict[str, dict[str, float]] = {}
    for lang in ("fr", "en"):
        path = lexicon_dir / f"vader_{lang}.json.gz"
        lexicons[lang] = json.loads(gzip.decompress(path.read_bytes()))
    for line in (lexicon_dir / "additions.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        lang, word, valence = line.split("\t")
        tokens = tokenise(word)
        if len(tokens) != 1:
            raise SystemExit(f"additions.tsv: {word!r} is not one token")
        lexicons[lang][tokens[0].text] = float(valence)
    lexicons["fr"] = _with_french_inflections(lexicons["fr"])
    return lexicons


# French adjective endings: masculine -> (feminine, plurals). "-eux" -> "-euse", "-euses"...
_FRENCH_INFLECTIONS = (
    ("eux", ("euse", "euses")),
    ("if", ("ive", "ifs", "ives")),
    ("el", ("elle", "els", "elles")),
    ("al", ("ale", "aux", "ales")),
    ("e", ("es",)),
    ("", ("e", "s", "es")),
)


def _with_french_inflections(lexicon: dict[str, float]) -> dict[str, float]:
    """The lexicon plus the missing feminine and plural forms of its words (same valence).

    The French VADER lexicon is a word-by-word translation: mostly masculine singulars, so
    "excellente", "exceptionnels" were unknown to it.
    """
    extended = dict(lexicon)
    for word, valence in sorted(lexicon.items()):
        if len(word) < 4 or not word.isalpha() or not word.isascii():
            continue
        for ending, forms in _FRENCH_INFLECTIONS:
            if word.endswith(ending):
                stem = word[: len(word) - len(ending)]
                for form in forms:
                    extended.setdefault(stem + form, valence)
                break
    return extended


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
    design: scipy.sparse.csr_matrix,
    labels: npt.NDArray[np.int64],
    l2: float,
    monotone: dict[int, int] | None = None,
    start: npt.NDArray[np.float64] | None = None,
    penalty_scale: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Multinomial logistic regression (bias unpenalised) by L-BFGS-B: (weights, bias, solution).

    `start` is a previous solution on the same columns (a warm start along the L2 path).

    `penalty_scale` (n_columns, 3) multiplies each weight's L2 penalty (default all ones): with
    1 / s**2 it is the same fit as scaling that column by s for that class (NB-LR).

    `monotone` maps a column to +1 or -1: that column may only raise (+1) or lower (-1) the
    positive logit against the negative one (w_pos - w_neg >= 0, or <= 0). Such a column is
    fitted as (w_neg, w_neu, d = w_pos - w_neg) with d bounded; L2 applies to the real weights.
    """
    n_rows, n_columns = design.shape
    one_hot = np.eye(N_CLASSES)[labels]
    constrained = np.asarray(sorted(monotone or {}), dtype=np.intp)
    penalty = np.ones((n_columns, N_CLASSES)) if penalty_scale is None else penalty_scale

    def real_weights(flat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        weights = flat[: n_columns * N_CLASSES].reshape(n_columns, N_CLASSES).copy()
        weights[constrained, 2] += weights[constrained, 0]
        return weights

    def loss_and_gradient(flat: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        weights = real_weights(flat)
        bias = flat[n_columns * N_CLASSES :]
        logits = design @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss = -float(np.sum(one_hot * log_probabilities)) / n_rows
        loss += 0.5 * l2 * float(np.sum(penalty * weights * weights))
        residual = (np.exp(log_probabilities) - one_hot) / n_rows
        weight_gradient = np.asarray(design.T @ residual) + l2 * penalty * weights
        # Chain rule of w_pos = w_neg + d: d's gradient is w_pos's, w_neg's gains it too.
        weight_gradient[constrained, 0] += weight_gradient[constrained, 2]
        return loss, np.concatenate([weight_gradient.ravel(), residual.sum(axis=0)])

    bounds: list[tuple[float | None, float | None]] = [(None, None)] * (
        n_columns * N_CLASSES + N_CLASSES
    )
    for column, sign in (monotone or {}).items():
        bounds[column * N_CLASSES + 2] = (0.0, None) if sign > 0 else (None, 0.0)
    solution = scipy.optimize.minimize(
        loss_and_gradient,
        np.zeros(n_columns * N_CLASSES + N_CLASSES) if start is None else start,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds if monotone else None,
        options={"maxiter": MAX_ITERATIONS},
    )
    flat: npt.NDArray[np.float64] = solution.x
    return real_weights(flat), flat[n_columns * N_CLASSES :], flat


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


# Dense features whose effect on positive-vs-negative is known in advance (index -> sign): more
# positive valence, or a positive emoticon, never argues for "negative", and conversely. The
# French tweets are often ironic ("bravo ..." meaning the opposite), so left free the model
# learnt that positive words mean negative, and read positive headlines as negative.
MONOTONE_DENSE_FEATURES = {
    DENSE_FEATURE_NAMES.index(name): sign
    for name, sign in (
        ("lex_pos_sum", 1),
        ("lex_neg_sum", 1),  # a sum of negative valences: lower is more negative
        ("lex_pos_count", 1),
        ("lex_neg_count", -1),
        ("lex_max", 1),
        ("lex_min", 1),
        ("emoticon_pos", 1),
        ("emoticon_neg", -1),
    )
}
NEUTRAL_OFFSETS = np.round(np.arange(-1.0, 1.0001, 0.05), 2)


def monotone_columns(n_sparse: int) -> dict[int, int]:
    return {n_sparse + index: sign for index, sign in MONOTONE_DENSE_FEATURES.items()}


def naive_bayes_penalty(
    design: scipy.sparse.csr_matrix, labels: npt.NDArray[np.int64], n_sparse: int
) -> npt.NDArray[np.float64]:
    """Per-weight L2 factors of NB-LR (Wang & Manning 2012), one class against the others.

    A sparse feature's log-count ratio r (smoothed by NB_SMOOTHING) says how much more often it
    occurs in one class's texts than in the others'; fitting the LR on features scaled by
    |r| + NB_PENALTY_FLOOR is the same as penalising that weight by 1 / (|r| + floor)**2, so the
    weights stay in the model's format and scoring is unchanged. Dense columns keep factor 1.
    """
    present = (design[:, :n_sparse] > 0).astype(np.float64)
    penalty = np.ones((design.shape[1], N_CLASSES))
    for label in range(N_CLASSES):
        inside = NB_SMOOTHING + np.asarray(present[labels == label].sum(axis=0)).ravel()
        outside = NB_SMOOTHING + np.asarray(present[labels != label].sum(axis=0)).ravel()
        ratio = np.log((inside / inside.sum()) / (outside / outside.sum()))
        penalty[:n_sparse, label] = 1.0 / (np.abs(ratio) + NB_PENALTY_FLOOR) ** 2
    return penalty


def penalty_scale(
    design: scipy.sparse.csr_matrix,
    labels: npt.NDArray[np.int64],
    n_sparse: int,
    naive_bayes: bool,
) -> npt.NDArray[np.float64] | None:
    return naive_bayes_penalty(design, labels, n_sparse) if naive_bayes else None


def fit(
    builder: FeatureMatrixBuilder,
    rows: npt.NDArray[np.intp],
    labels: npt.NDArray[np.int64],
    l2: float,
    naive_bayes: bool,
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    vocabulary = builder.vocabulary(rows)
    design = builder.matrix(rows, vocabulary)
    weights, bias, _ = fit_logistic_regression(
        design,
        labels[rows],
        l2,
        monotone_columns(len(vocabulary)),
        penalty_scale=penalty_scale(design, labels[rows], len(vocabulary), naive_bayes),
    )
    return vocabulary, weights, bias


def out_of_fold_logits(
    builder: FeatureMatrixBuilder,
    labels: npt.NDArray[np.int64],
    l2_grid: Sequence[float],
    naive_bayes: bool,
) -> dict[float, npt.NDArray[np.float64]]:
    """Per L2 strength, each train text's logits from the model fitted on the other folds.

    Each fold goes down the L2 path from the strongest, every fit starting from the last one.
    """
    folds = stratified_folds(labels)
    logits = {l2: np.zeros((len(labels), N_CLASSES)) for l2 in l2_grid}
    for held_out in range(N_FOLDS):
        train_rows = np.concatenate([fold for i, fold in enumerate(folds) if i != held_out])
        vocabulary = builder.vocabulary(train_rows)
        design = builder.matrix(train_rows, vocabulary)
        held_out_design = builder.matrix(folds[held_out], vocabulary)
        penalty = penalty_scale(design, labels[train_rows], len(vocabulary), naive_bayes)
        solution = None
        for l2 in sorted(l2_grid, reverse=True):
            weights, bias, solution = fit_logistic_regression(
                design,
                labels[train_rows],
                l2,
                monotone_columns(len(vocabulary)),
                solution,
                penalty,
            )
            logits[l2][folds[held_out]] = np.asarray(held_out_design @ weights + bias)
    return logits


def fold_scores(
    logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], neutral_offset: float = 0.0
) -> list[float]:
    shifted = logits + np.asarray([0.0, neutral_offset, 0.0])
    return [
        macro_f1(labels[fold], shifted[fold].argmax(axis=1)) for fold in stratified_folds(labels)
    ]


def best_neutral_offset(logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]) -> float:
    """The shift of the neutral logit that maximises macro-F1 over these texts (ties: nearest 0)."""
    return float(
        max(
            NEUTRAL_OFFSETS,
            key=lambda offset: (
                macro_f1(labels, (logits + np.asarray([0.0, offset, 0.0])).argmax(axis=1)),
                -abs(offset),
            ),
        )
    )


def nested_offset_scores(
    logits: npt.NDArray[np.float64], labels: npt.NDArray[np.int64]
) -> list[float]:
    """Per fold, macro-F1 with the neutral offset chosen on the other folds only (honest CV)."""
    folds = stratified_folds(labels)
    scores = []
    for held_out, fold in enumerate(folds):
        others = np.concatenate([f for i, f in enumerate(folds) if i != held_out])
        offset = best_neutral_offset(logits[others], labels[others])
        shifted = logits[fold] + np.asarray([0.0, offset, 0.0])
        scores.append(macro_f1(labels[fold], shifted.argmax(axis=1)))
    return scores


@dataclass(frozen=True)
class BlendChoice:
    """What --blend chose: the LR's and NB-LR's L2 strengths, the LR's share, the offset."""

    lr_l2: float
    nb_l2: float
    lr_share: float
    neutral_offset: float


def blend_logits(
    lr_logits: dict[float, npt.NDArray[np.float64]],
    nb_logits: dict[float, npt.NDArray[np.float64]],
) -> dict[tuple[float, float, float], npt.NDArray[np.float64]]:
    """Out-of-fold logits of every averaged model, by (LR l2, NB-LR l2, LR share)."""
    return {
        (lr_l2, nb_l2, share): share * lr_logits[lr_l2] + (1.0 - share) * nb_logits[nb_l2]
        for lr_l2 in lr_logits
        for nb_l2 in nb_logits
        for share in BLEND_SHARES
    }


def choose_blend(
    candidates: dict[tuple[float, float, float], npt.NDArray[np.float64]],
    labels: npt.NDArray[np.int64],
    rows: npt.NDArray[np.intp],
) -> BlendChoice:
    """The candidate and neutral offset with the best macro-F1 over `rows` (ties: offset nearest 0,
    then the first candidate)."""
    best: tuple[float, float] | None = None
    choice = BlendChoice(0.0, 0.0, 1.0, 0.0)
    for (lr_l2, nb_l2, share), logits in candidates.items():
        for offset in NEUTRAL_OFFSETS:
            shifted = logits[rows] + np.asarray([0.0, offset, 0.0])
            key = (macro_f1(labels[rows], shifted.argmax(axis=1)), -abs(float(offset)))
            if best is None or key > best:
                best = key
                choice = BlendChoice(lr_l2, nb_l2, share, float(offset))
    return choice


def nested_blend_scores(
    candidates: dict[tuple[float, float, float], npt.NDArray[np.float64]],
    labels: npt.NDArray[np.int64],
) -> list[float]:
    """Per fold, macro-F1 of the blend and offset chosen on the other folds only."""
    folds = stratified_folds(labels)
    scores = []
    for held_out, fold in enumerate(folds):
        others = np.concatenate([f for i, f in enumerate(folds) if i != held_out])
        choice = choose_blend(candidates, labels, others)
        logits = candidates[choice.lr_l2, choice.nb_l2, choice.lr_share][fold]
        shifted = logits + np.asarray([0.0, choice.neutral_offset, 0.0])
        scores.append(macro_f1(labels[fold], shifted.argmax(axis=1)))
    return scores


def fit_blend(
    builder: FeatureMatrixBuilder,
    labels: npt.NDArray[np.int64],
    candidates: dict[tuple[float, float, float], npt.NDArray[np.float64]],
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]:
    """--blend on all of train: the chosen average of LR and NB-LR, and what was chosen."""
    all_rows = np.arange(len(labels), dtype=np.intp)
    choice = choose_blend(candidates, labels, all_rows)
    nested_scores = nested_blend_scores(candidates, labels)
    print(f"blend: chose {choice}; nested CV macro-F1 {np.mean(nested_scores):.4f}")
    vocabulary, lr_weights, lr_bias = fit(builder, all_rows, labels, choice.lr_l2, False)
    _, nb_weights, nb_bias = fit(builder, all_rows, labels, choice.nb_l2, True)
    share = choice.lr_share
    weights = share * lr_weights + (1.0 - share) * nb_weights
    bias = share * lr_bias + (1.0 - share) * nb_bias + np.asarray([0.0, choice.neutral_offset, 0.0])
    summary = {
        "blend": True,
        "lr_l2": choice.lr_l2,
        "nb_l2": choice.nb_l2,
        "lr_share": share,
        "neutral_offset": choice.neutral_offset,
        "cv_macro_f1": round(float(np.mean(nested_scores)), 4),
        "cv_macro_f1_std": round(float(np.std(nested_scores)), 4),
    }
    return vocabulary, weights, bias, summary


def train_language(
    data_dir: Path,
    lang: str,
    lexicon: dict[str, float],
    output_dir: Path,
    naive_bayes: bool,
    blend: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    train_texts, train_labels = read_split(data_dir, lang, "train")
    builder = FeatureMatrixBuilder(train_texts, lexicon)
    if blend:
        candidates = blend_logits(
            out_of_fold_logits(builder, train_labels, L2_GRID, False),
            out_of_fold_logits(builder, train_labels, NB_L2_GRID, True),
        )
        vocabulary, weights, bias, summary = fit_blend(builder, train_labels, candidates)
    else:
        vocabulary, weights, bias, summary = train_single(builder, train_labels, lang, naive_bayes)
    return write_model(
        data_dir, lang, lexicon, output_dir, (vocabulary, weights, bias), summary, started
    )


def train_single(
    builder: FeatureMatrixBuilder,
    train_labels: npt.NDArray[np.int64],
    lang: str,
    naive_bayes: bool,
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]:
    """LR (or NB-LR): the L2 strength by CV, then the neutral offset if it pays in nested CV."""
    l2_grid = NB_L2_GRID if naive_bayes else L2_GRID
    logits_by_l2 = out_of_fold_logits(builder, train_labels, l2_grid, naive_bayes)
    for l2, logits in logits_by_l2.items():
        scores = fold_scores(logits, train_labels)
        print(f"{lang} l2={l2:g}: CV macro-F1 {np.mean(scores):.4f} ± {np.std(scores):.4f}")
    best_l2 = max(
        l2_grid, key=lambda l2: float(np.mean(fold_scores(logits_by_l2[l2], train_labels)))
    )
    # The neutral class's threshold, calibrated on the out-of-fold logits of the chosen l2; its
    # honest CV figure chooses the offset on four folds and scores the fifth.
    neutral_offset = best_neutral_offset(logits_by_l2[best_l2], train_labels)
    cv_scores = fold_scores(logits_by_l2[best_l2], train_labels)
    nested_scores = nested_offset_scores(logits_by_l2[best_l2], train_labels)
    if np.mean(nested_scores) <= np.mean(cv_scores):
        # Calibrating the threshold does not pay on held-out folds: keep argmax.
        neutral_offset = 0.0
        nested_scores = cv_scores
    print(
        f"{lang}: neutral offset {neutral_offset:+.2f}; nested CV macro-F1 "
        f"{np.mean(nested_scores):.4f} ± {np.std(nested_scores):.4f}"
    )

    all_rows = np.arange(len(train_labels), dtype=np.intp)
    vocabulary, weights, bias = fit(builder, all_rows, train_labels, best_l2, naive_bayes)
    bias = bias + np.asarray([0.0, neutral_offset, 0.0])
    summary = {
        "naive_bayes": naive_bayes,
        "l2": best_l2,
        "neutral_offset": neutral_offset,
        "cv_macro_f1_without_offset": round(float(np.mean(cv_scores)), 4),
        "cv_macro_f1": round(float(np.mean(nested_scores)), 4),
        "cv_macro_f1_std": round(float(np.std(nested_scores)), 4),
    }
    return vocabulary, weights, bias, summary


def write_model(
    data_dir: Path,
    lang: str,
    lexicon: dict[str, float],
    output_dir: Path,
    model: tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    choices: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Scores val once (after every choice) and writes the model file."""
    vocabulary, weights, bias = model
    val_texts, val_labels = read_split(data_dir, lang, "val")
    val_builder = FeatureMatrixBuilder(val_texts, lexicon)
    val_f1 = macro_f1(
        val_labels,
        predict(val_builder.matrix(np.arange(len(val_texts)), vocabulary), weights, bias),
    )
    summary = {
        **choices,
        "val_macro_f1": round(val_f1, 4),
        "train_size": len(read_split(data_dir, lang, "train")[1]),
        "features": len(vocabulary),
    }
    print(f"{lang}: val macro-F1 {val_f1:.4f} ({summary})")

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
        "licence": "lexicon: VADER (MIT, C.J. Hutto), vaderSentiment-fr 1.3.4 (MIT), hand-written",
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
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "vigie" / "data")
    parser.add_argument("--langs", nargs="+", default=["fr", "en"], choices=["fr", "en"])
    parser.add_argument(
        "--naive-bayes",
        action="store_true",
        help="NB-LR: each sparse weight's L2 penalty scaled by its log-count ratio",
    )
    parser.add_argument(
        "--blend",
        action="store_true",
        help="the average of LR and NB-LR, L2 strengths and share chosen together by CV",
    )
    arguments = parser.parse_args(argv)
    lexicons = read_lexicons()
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    for lang in arguments.langs:
        train_language(
            arguments.data_dir,
            lang,
            lexicons[lang],
            arguments.output_dir,
            arguments.naive_bayes,
            arguments.blend,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
