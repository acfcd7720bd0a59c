"""The indexed crisis-vocabulary scan finds exactly what the term-by-term scan it replaced found,
kept here as the oracle: on hypothesis-generated texts built from the lexicon's own words (so
that phrases, prefixes and near misses are common), with the bundled lexicon and a made-up one
with overlapping phrases."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tasks.detect.signals import CRISIS_LEXICON, _compile, crisis_terms
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
