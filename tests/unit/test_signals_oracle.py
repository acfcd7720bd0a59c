"""The indexed crisis-vocabulary scan finds exactly what the term-by-term scan it replaced found,
kept here as the oracle: on hypothesis-generated texts built from the lexicon's own words (so
that phrases, prefixes and near misses are common), with the bundled lexicon and a made-up one
with overlapping phrases."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.detect.signals import (
    CRISIS_LEXICON,
    MAX_MENTIONS_READ_FOR_WORDS,
    _compile,
    crisis_terms,
    vocabulary_signal,
    written_terms,
)
from vigie.models import WindowMention
from vigie.query import text_words


def oracle_crisis_terms(text: str, lexicon: Mapping[str, float]) -> dict[str, float]:
    words = text_words(text)
    found: dict[str, float] = {}
    for terms, prefix, weight, label in _compile(lexicon):
        n = len(terms)
        for start in range(len(words) - n + 1):
            window = words[start : start + n]
            head_ok = window[:-1] == terms[:-1]
            last_ok = window[-1].startswith(terms[-1]) if prefix else window[-1] == terms[-1]
            if head_ok and last_ok:
                found[label] = weight
                break
    return found


OVERLAPPING = {
    "rappel": 1.0,
    "rappel produit*": 2.0,
    "produit contamin*": 3.0,
    "contamin*": 1.5,
    "boycott": 2.5,
    "appel au boycott": 3.5,
    "au": 0.1,
}
_VOCABULARY = sorted(
    {w for term in [*CRISIS_LEXICON, *OVERLAPPING] for w in text_words(term.rstrip("*"))}
    | {"la", "laiterie", "boreale", "contaminee", "rappels", "produits", "appelle", "x"}
)
texts = st.lists(st.one_of(st.sampled_from(_VOCABULARY), st.text(max_size=6)), max_size=30).map(
    " ".join
)


@settings(max_examples=600, deadline=None)
@given(texts)
@example("Rappel produit : lait contaminé, appel au boycott")
@example("")
@example("contamin")
def test_the_indexed_scan_finds_what_the_term_by_term_scan_found(text: str) -> None:
    for lexicon in (CRISIS_LEXICON, OVERLAPPING):
        assert crisis_terms(text, lexicon) == oracle_crisis_terms(text, lexicon)
        # Same terms, in the same (lexicon) order: the evidence lists them in that order.
        assert list(crisis_terms(text, lexicon)) == list(oracle_crisis_terms(text, lexicon))


def oracle_vocabulary(
    mentions: list[WindowMention], lexicon: Mapping[str, float]
) -> tuple[float, dict[str, int]]:
    total = 0.0
    counts: dict[str, int] = {}
    for mention in mentions:
        found = oracle_crisis_terms(f"{mention.title} {mention.summary}", lexicon)
        if found:
            total += max(found.values())
            for term in found:
                counts[term] = counts.get(term, 0) + 1
    return min(1.0, total / len(mentions) * 1.5), counts


def oracle_written_terms(
    mentions: list[WindowMention], labels: list[str], lexicon: Mapping[str, float]
) -> dict[str, str]:
    """Mention by mention, token by token: what `written_terms` read before it read each
    distinct text once."""
    wanted = [c for c in _compile(lexicon) if c[3] in set(labels)]
    seen: dict[str, Counter[str]] = {}
    for mention in mentions[:MAX_MENTIONS_READ_FOR_WORDS]:
        pairs: list[tuple[str, str]] = []
        for token in re.findall(r"[^\W_]+", f"{mention.title} {mention.summary}"):
            folded = text_words(token)
            pairs += [(folded[0], token.lower())] if len(folded) == 1 else [(w, w) for w in folded]
        words = [w for w, _ in pairs]
        for terms, prefix, _, label in wanted:
            n = len(terms)
            for start in range(len(words) - n + 1):
                window = words[start : start + n]
                if window[:-1] != list(terms[:-1]):
                    continue
                if window[-1].startswith(terms[-1]) if prefix else window[-1] == terms[-1]:
                    form = " ".join(original for _, original in pairs[start : start + n])
                    seen.setdefault(label, Counter())[form] += 1
                    break
    return {label: forms.most_common(1)[0][0] for label, forms in seen.items()}


# Words as mentions write them: accents and capitals, so that forms of one term differ.
_WRITTEN = [
    *_VOCABULARY,
    "Rappel",
    "RAPPELÉ",
    "rappelés",
    "Contaminée",
    "contaminé",
    "Fuite",
    "données",
    "Données",
    "Boycott",
    "grève",
    "Grèves",
]
written_texts = st.lists(st.sampled_from(_WRITTEN), max_size=12).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(written_texts, min_size=1, max_size=5),
    st.lists(st.integers(0, 4), min_size=1, max_size=40),
)
def test_copies_sharing_a_text_count_as_the_mentions_they_are(
    pool: list[str], picks: list[int]
) -> None:
    """A story's copies (one per source) share their text and are read once: the counts,
    the score and the commonest written form stay those of reading every copy."""
    mentions = [
        WindowMention(f"s{i}", "news", 3, pool[pick % len(pool)], "", None, "story")
        for i, pick in enumerate(picks)
    ]
    for lexicon in (CRISIS_LEXICON, OVERLAPPING):
        score, counts = vocabulary_signal(mentions, lexicon)
        oracle_score, oracle_counts = oracle_vocabulary(mentions, lexicon)
        # Weight x copies, not copies additions: equal but for the last bits.
        assert score == pytest.approx(oracle_score, rel=1e-12, abs=1e-12)
        assert counts == oracle_counts
        labels = list(counts)
        assert written_terms(mentions, labels, lexicon) == oracle_written_terms(
            mentions, labels, lexicon
        )
