"""The cell-facing commands' texts: every text in both languages, with the same blanks."""

from __future__ import annotations

import string

from cli.words import WORDS, say


def _blanks(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_text_exists_in_french_and_english_with_the_same_blanks() -> None:
    assert set(WORDS["fr"]) == set(WORDS["en"])
    for key, french in WORDS["fr"].items():
        assert _blanks(french) == _blanks(WORDS["en"][key]), key


def test_a_text_is_said_in_the_organisations_language_and_in_english_otherwise() -> None:
    assert say("fr", "ack.done", alert_id="al-1", by="Awa") == "al-1 pris en charge par Awa"
    assert say("en", "ack.done", alert_id="al-1", by="Awa") == "al-1 acknowledged by Awa"
    assert say("de", "readiness.sent") == "sent"
