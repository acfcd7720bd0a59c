"""Regenerate tests/fixtures/sentiment/expected_scores.json.gz after the models change.

Usage (from the repository root): .venv/bin/python tools/sentiment_expected_scores.py

The expected scores come from the models' definition, text by text: the features training uses
(sparse_features, dense_features) through the packaged weights, with none of the scorer's caches
or batching; tests/unit/test_sentiment_equivalence.py then checks the fast scorer against them.
The fixture's texts are kept; its dev tweets are read from ../shared/bench/sentiment_dev.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from vigie.sentiment import (  # noqa: E402  (the repository root must be importable first)
    LABELS,
    Language,
    dense_features,
    detect_language,
    load_model,
    sparse_features,
    tokenise,
)

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "sentiment" / "expected_scores.json.gz"
BENCH = REPO_ROOT / ".." / "shared" / "bench" / "sentiment_dev"
LANGUAGES: tuple[Language, Language] = ("fr", "en")


def reference_probabilities(text: str, lang: Language) -> npt.NDArray[np.float64]:
    model = load_model(lang)
    tokens = tokenise(text)
    indices = sorted(
        index
        for index in map(model.feature_index.get, sparse_features(tokens))
        if index is not None
    )
    logits = model.bias.copy()
    if indices:
        logits += model.sparse_weights[indices].sum(axis=0) / math.sqrt(len(indices))
    dense = np.asarray(dense_features(tokens, model.lexicon))
    logits += (dense[:, None] * model.dense_weights).sum(axis=0)
    exponentials = np.exp(logits - logits.max())
    probabilities: npt.NDArray[np.float64] = exponentials / exponentials.sum()
    return probabilities


def reference_result(text: str, lang: str) -> tuple[str, str, float]:
    """(lang, label, score) as score_text(text, lang) must return them."""
    text_lang = detect_language(text) if lang == "auto" else lang
    if text_lang == "und":
        probabilities = (
            reference_probabilities(text, "fr") + reference_probabilities(text, "en")
        ) / 2.0
    else:
        probabilities = reference_probabilities(text, "fr" if text_lang == "fr" else "en")
    score = float(np.clip(probabilities[2] - probabilities[0], -1.0, 1.0))
    return text_lang, LABELS[int(probabilities.argmax())], score


def bench_tweets(lang: str) -> list[str]:
    texts: list[str] = []
    for split in ("train", "val"):
        count = len((BENCH / lang / f"{split}_labels.txt").read_text().split())
        lines = (BENCH / lang / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
        texts += lines[:count]
    return texts


def main() -> int:
    old: dict[str, Any] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    edge_texts: list[str] = old["edge_texts"]
    payload: dict[str, Any] = {
        "edge_texts": edge_texts,
        "edge": {
            lang: [list(reference_result(text, lang)) for text in edge_texts]
            for lang in ("fr", "en", "auto")
        },
        "edge_detected": [detect_language(text) for text in edge_texts],
        "bench": {},
    }
    for lang in LANGUAGES:
        texts = bench_tweets(lang)
        explicit = [reference_result(text, lang) for text in texts]
        auto = [reference_result(text, "auto") for text in texts]
        payload["bench"][lang] = {
            "count": len(texts),
            lang: [[label[0], round(score, 12)] for _, label, score in explicit],
            "auto": [[text_lang, label[0], round(score, 12)] for text_lang, label, score in auto],
        }
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    FIXTURE.write_bytes(gzip.compress(encoded, compresslevel=9, mtime=0))
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
