"""The fast scoring path of `vigie.sentiment` gives the results of the models' definition.

tests/fixtures/sentiment/expected_scores.json.gz holds what tools/sentiment_expected_scores.py
computes text by text from the features training uses, without the scorer's caches and batching
(the same numbers as the per-text implementation of commit 6cc2d96, on the first models): for
feed-like edge cases and a sample of the matched mentions of issue 3's feed farm ("edge_texts"),
under "fr", "en" and "auto", scores exact; for the dev tweets of ../shared/bench/sentiment_dev
(beside the repository), scores rounded to 12 decimals. Retraining the models regenerates it.
A property test also checks the scorer against the features training uses.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigie import sentiment
from vigie.sentiment import (
    Language,
    dense_features,
    detect_language,
    load_model,
    score_text,
    score_texts,
    sparse_features,
    tokenise,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "sentiment" / "expected_scores.json.gz"
# The dev set sits beside the repository: the repository root's ../shared/bench/sentiment_dev.
BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "bench" / "sentiment_dev"
TOLERANCE = 1e-9
LANGUAGES: tuple[Language, ...] = ("fr", "en")


def expected() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    return payload


def bench_tweets(lang: str) -> list[str]:
    texts: list[str] = []
    for split in ("train", "val"):
        count = len((BENCH / lang / f"{split}_labels.txt").read_text().split())
        lines = (BENCH / lang / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
        texts += lines[:count]
    return texts


def clear_all_caches() -> None:
    sentiment._word_tokens.cache_clear()
    sentiment._run_tokens.cache_clear()
    for lang in LANGUAGES:
        load_model(lang).clear_caches()


def reference_probabilities(text: str, lang: Language) -> list[float]:
    """The model's definition: the training features, L2-normalised, through the weights."""
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
    return list(exponentials / exponentials.sum())


def test_the_fixture_covers_feed_like_edge_cases() -> None:
    texts = expected()["edge_texts"]
    assert "" in texts
    assert any(len(text) > 10_000 for text in texts)
    assert any("&amp;" in text for text in texts)
    assert any("https://" in text for text in texts)
    assert any("#" in text for text in texts)
    assert any("😀" in text for text in texts)
    assert any("é" in text for text in texts)
    assert sum(1 for text in texts if "Acme" in text or "Acmé" in text) >= 100


@pytest.mark.parametrize("lang", ["fr", "en", "auto"])
@pytest.mark.parametrize("cold", [True, False], ids=["cold-caches", "warm-caches"])
def test_edge_and_feed_texts_score_as_before(lang: str, cold: bool) -> None:
    payload = expected()
    texts = payload["edge_texts"]
    if cold:
        clear_all_caches()
    results = score_texts(texts, lang)
    for text, (old_lang, old_label, old_score), result in zip(
        texts, payload["edge"][lang], results, strict=True
    ):
        assert (result.lang, result.label) == (old_lang, old_label), text
        assert abs(result.score - old_score) <= TOLERANCE, text


def test_languages_are_detected_as_before() -> None:
    payload = expected()
    assert [detect_language(text) for text in payload["edge_texts"]] == payload["edge_detected"]


@pytest.mark.skipif(not BENCH.is_dir(), reason="the dev tweets are in ../shared/bench")
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("mode", ["explicit", "auto"])
def test_bench_tweets_score_as_before(lang: Language, mode: str) -> None:
    payload = expected()["bench"][lang]
    texts = bench_tweets(lang)
    assert len(texts) == payload["count"]
    clear_all_caches()
    if mode == "explicit":
        rows = [[lang, label, score] for label, score in payload[lang]]
        results = score_texts(texts, lang)
    else:
        rows = payload["auto"]
        results = score_texts(texts, "auto")
    for text, (old_lang, old_label, old_score), result in zip(texts, rows, results, strict=True):
        assert (result.lang, result.label[0]) == (old_lang, old_label), text
        # The fixture rounds these scores to 12 decimals.
        assert abs(result.score - old_score) <= TOLERANCE, text


def test_scoring_after_clearing_caches_mid_stream_is_unchanged() -> None:
    texts = expected()["edge_texts"]
    before = score_texts(texts, "en")
    load_model("en").clear_caches()
    shuffled = texts[::-1]
    after = score_texts(shuffled, "en")
    assert after[::-1] == before
    assert [score_text(text, "en") for text in texts[:20]] == before[:20]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *"aAeéÉxXdD8:;=()<3^_#@!?.…'’- \t\n\u00a0\u0301😀❤",
                *("\\u0020", "\\u0301", "&amp;", "&lt;3", "http://", "www.", "n't", "l'"),
            ]
        )
        | st.characters(),
        max_size=40,
    ).map("".join)
)
def test_tokens_of_runs_are_the_tokens_of_the_whole_text(text: str) -> None:
    # Tokenising the text in one piece (what tokenise did before it went run by run).
    assert tokenise(text) == list(sentiment._run_tokens(text))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            "pas not never bien good bad mauvais très very super TERRIBLE GREAT :) :( !! ?? "
            "#CriseLaitière @user http://t.co/x l'État n'a don't 😀 😡 … - & ok".split()
        )
        | st.text(max_size=8),
        max_size=25,
    ).map(" ".join),
    st.sampled_from(LANGUAGES),
)
def test_probabilities_follow_the_training_features(text: str, lang: Language) -> None:
    fast = load_model(lang).probabilities([text, "padding so the batch has two texts"])[0]
    assert np.allclose(fast, reference_probabilities(text, lang), rtol=0, atol=TOLERANCE)


def test_the_language_identifier_keeps_only_french_and_english_columns() -> None:
    identifier = sentiment._language_identifier()
    assert sorted(identifier.nb_classes) == ["en", "fr"]
    # The table for every language (28 MB) is released; the one used stays.
    assert all(
        part is used
        for part, used in zip(
            identifier._full_model,
            (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes),
            strict=True,
        )
    )
    assert identifier.classify("Le gouvernement annonce une nouvelle loi sur l'énergie")[0] == "fr"
