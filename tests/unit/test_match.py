"""Matching mentions to watches (`tasks.collect.match`): queries, topics, and per-watch
languages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigie.matching import match_mentions
from vigie.models import Mention
from vigie.settings import Watch

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
FRENCH = "Scandale : la Laiterie Boréale rappelle ses fromages contaminés"
ENGLISH = "Boreale dairy recalls contaminated cheese after children fall ill"


def _m(n: int, title: str, language: str | None = None, summary: str = "") -> Mention:
    return Mention(
        f"m{n}", "s", "news", 1, f"https://x.example/{n}", title, summary, None, NOW, NOW,
        language, f"s{n}",
    )  # fmt: skip


def test_a_mention_gets_the_names_of_the_watches_it_matches() -> None:
    watches = [
        Watch(name="marque", query="boreale"),
        Watch(name="rappels", query="rappel* NEAR/3 fromage*"),
        Watch(name="autre", query="concurrent"),
    ]
    [kept] = match_mentions([_m(1, FRENCH), _m(2, "Météo du jour")], watches)
    assert kept.topics == ("marque", "rappels")


def test_the_summary_and_the_author_are_matched_too() -> None:
    mention = _m(1, "Titre", summary="La Laiterie Boréale répond")
    assert match_mentions([mention], [Watch(name="marque", query='"laiterie boreale"')])


@pytest.mark.parametrize(
    ("language", "languages", "kept"),
    [
        pytest.param("fr", ("fr",), True, id="fr-in-fr"),
        pytest.param("en", ("fr",), False, id="en-not-in-fr"),
        pytest.param("en", ("fr", "en"), True, id="en-in-fr-en"),
        pytest.param("en", None, True, id="no-list-matches-all"),
        pytest.param("fr", None, True, id="no-list-matches-fr"),
    ],
)
def test_a_known_language_must_be_in_the_watch_languages(
    language: str, languages: tuple[str, ...] | None, kept: bool
) -> None:
    watch = Watch.model_validate({"name": "marque", "query": "boreale", "languages": languages})
    # The declared language wins over the text (a bilingual source says which it is).
    found = match_mentions([_m(1, "Boreale " + FRENCH, language)], [watch])
    assert bool(found) is kept


def test_an_undetermined_language_matches_every_watch() -> None:
    watch = Watch(name="marque", query="boreale", languages=("en",))
    [kept] = match_mentions([_m(1, "Boréale !")], [watch])
    assert kept.language is None


def test_an_unknown_language_is_detected_for_a_watch_with_languages() -> None:
    watches = [
        Watch(name="fr", query="boreale", languages=("fr",)),
        Watch(name="en", query="boreale", languages=("en",)),
        Watch(name="all", query="boreale"),
    ]
    french, english = match_mentions([_m(1, FRENCH), _m(2, ENGLISH)], watches)
    assert (french.topics, french.language) == (("fr", "all"), "fr")
    assert (english.topics, english.language) == (("en", "all"), "en")


def test_no_detection_when_no_watch_restricts_languages() -> None:
    [kept] = match_mentions([_m(1, ENGLISH)], [Watch(name="all", query="boreale")])
    assert kept.language is None  # left to enrichment


def test_a_mention_of_another_language_only_is_dropped() -> None:
    watch = Watch(name="fr", query="boreale", languages=("fr",))
    assert match_mentions([_m(1, ENGLISH)], [watch]) == []
