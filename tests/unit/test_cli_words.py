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


def test_the_cell_commands_texts_come_from_the_one_catalogue() -> None:
    from tasks.notify.rendering import catalogue

    assert WORDS["fr"]["ack.done"] == catalogue("fr")["cli"]["ack"]["done"]
    assert WORDS["en"]["serve.left"] == catalogue("en")["cli"]["serve"]["left"]


def test_incident_list_counts_situation_reports_with_their_plural_form() -> None:
    from cli.words import count

    assert count("fr", "incident.sitreps", 1) == "1 point de situation"
    assert count("fr", "incident.sitreps", 3) == "3 points de situation"
    assert count("en", "incident.sitreps", 1) == "1 situation report"
    assert count("en", "incident.sitreps", 0) == "0 situation reports"
    line = say(
        "fr",
        "incident.line",
        incident_id="inc-1",
        name="rappel",
        status="terminé",
        stop="",
        start="2026-12-07 10:00 UTC",
        end="2026-12-07 11:00 UTC",
        sitreps=count("fr", "incident.sitreps", 2),
    )
    assert line == (
        "inc-1 « rappel » terminé : 2026-12-07 10:00 UTC -> 2026-12-07 11:00 UTC, "
        "2 points de situation"
    )
