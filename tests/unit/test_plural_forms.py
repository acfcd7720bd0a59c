"""Counts in the emails and the UI use the language's plural forms (Babel's CLDR rules), never
"source(s)": French counts 0 and 1 in the singular, English only 1 (issue 21)."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.notify.rendering import Texts, catalogue


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("fr", 0, "0 mention"),
        ("fr", 1, "1 mention"),
        ("fr", 2, "2 mentions"),
        ("fr", 1204, "1\u202f204 mentions"),
        ("en", 0, "0 mentions"),
        ("en", 1, "1 mention"),
        ("en", 2, "2 mentions"),
        ("en", 1204, "1,204 mentions"),
    ],
)
def test_a_count_takes_the_plural_form_of_its_language(
    language: str, n: int, expected: str
) -> None:
    assert Texts(language).plural("counts.mentions", n) == expected


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("fr", 1, "1 email envoyé"),
        ("fr", 3, "3 emails envoyés"),
        ("en", 1, "1 email sent"),
        ("en", 3, "3 emails sent"),
    ],
)
def test_the_agreement_follows_the_count(language: str, n: int, expected: str) -> None:
    assert Texts(language).plural("counts.emails_sent", n) == expected


def _strings(table: Any) -> list[str]:
    if isinstance(table, dict):
        return [s for value in table.values() for s in _strings(value)]
    if isinstance(table, list):
        return [s for value in table for s in _strings(value)]
    return [str(table)]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_no_catalogue_text_hedges_its_plural_with_brackets(language: str) -> None:
    hedged = [text for text in _strings(catalogue(language)) if "(s)" in text]
    assert hedged == []


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_plural_table_has_the_other_form(language: str) -> None:
    """`Texts.plural` falls back on `other` for the forms a table leaves out (French `many`)."""

    def tables(table: Any) -> list[dict[str, Any]]:
        if not isinstance(table, dict):
            return []
        if "one" in table:
            return [table]
        return [t for value in table.values() for t in tables(value)]

    found = tables(catalogue(language))
    assert len(found) >= 10
    assert all("other" in table for table in found)


def test_the_ui_texts_of_the_cycle_come_from_the_one_catalogue() -> None:
    """The summary artifact's and the situation's words are the catalogue's (no table of texts
    per module), a text missing in English being its key, as before."""
    from tasks.publish.report import _word
    from tasks.publish.situation import texts

    assert _word("fr", "emails sent") == catalogue("fr")["cycle_summary"]["emails sent"]
    assert _word("en", "emails sent") == "emails sent"
    assert _word("fr", "a key nobody wrote") == "a key nobody wrote"
    assert texts("fr")["situation_title"] == catalogue("fr")["situation"]["situation_title"]
    assert texts("de") == texts("en")
