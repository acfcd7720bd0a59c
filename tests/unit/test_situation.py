"""What the Prefect UI says of the crisis, without Prefect: the named final state of a watch
cycle (name, message, tags) and the `situation` markdown, in French and English."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tasks.publish.situation import (
    Situation,
    cycle_result,
    cycle_verdict,
    final_state,
    situation_markdown,
)

NOW = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
ALERTS = {
    "al-1": {"alert_id": "al-1", "topic": "marque", "level": "crise"},
    "al-2": {"alert_id": "al-2", "topic": "urgences", "level": "alerte"},
}


def _summary(**overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "cycle_id": "20261207T163000-abcd1234",
        "alerts_opened": [],
        "alerts_escalated": [],
        "escalations": [],
        "emails_sent": 0,
        "emails_failed": {},
    }
    summary.update(overrides)
    return summary


def test_a_cycle_that_opens_a_crisis_is_named_for_it_with_level_and_topic() -> None:
    verdict = cycle_verdict(_summary(alerts_opened=["al-2", "al-1"]), ALERTS, "fr")  # type: ignore[arg-type]
    assert verdict.name == "Crise"
    assert verdict.message == (
        "Alerte ouverte : « urgences » (al-2); Crise ouverte : « marque » (al-1)"
    )
    assert verdict.tags == ["level:alerte", "topic:urgences", "level:crise", "topic:marque"]
    assert not verdict.failed
    english = cycle_verdict(_summary(alerts_escalated=["al-2"]), ALERTS, "en")  # type: ignore[arg-type]
    assert english.name == "Alert"
    assert english.message == "Alert escalated: “urgences” (al-2)"


def test_a_quiet_cycle_ends_in_a_plain_completed_state() -> None:
    verdict = cycle_verdict(_summary(), {}, "fr")  # type: ignore[arg-type]
    assert verdict == type(verdict)(name=None, message=None, tags=[], failed=False)
    state = final_state(verdict, _summary())  # type: ignore[arg-type]
    assert state.is_completed() and state.name == "Completed"


def test_a_cycle_whose_emails_failed_ends_failed_and_says_so() -> None:
    failed = {"m-1": "SMTP 500 refused", "m-2": "SMTP 500 refused"}
    summary = _summary(alerts_opened=["al-1"], emails_failed=failed)
    verdict = cycle_verdict(summary, ALERTS, "fr")  # type: ignore[arg-type]
    assert verdict.failed and verdict.name == "Crise : emails en échec"
    assert verdict.message is not None
    assert "2 emails non envoyés (SMTP 500 refused)" in verdict.message
    assert "emails-failed" in verdict.tags and "level:crise" in verdict.tags
    state = final_state(verdict, summary)  # type: ignore[arg-type]
    assert state.is_failed() and state.name == "Crise : emails en échec"
    # The caller still gets the summary (the data is loaded; the outbox tries again).
    assert cycle_result(state) == summary
    alone = cycle_verdict(_summary(emails_failed=failed), {}, "en")  # type: ignore[arg-type]
    assert alone.name == "Emails failed" and alone.failed


def test_a_completed_state_carries_the_summary_and_a_failed_run_raises_its_error() -> None:
    from prefect.states import Completed, Failed

    summary = _summary(alerts_opened=["al-1"])
    state = final_state(cycle_verdict(summary, ALERTS, "en"), summary)  # type: ignore[arg-type]
    assert state.is_completed() and state.name == "Crisis"
    assert state.message == "Crisis opened: “marque” (al-1)"
    assert cycle_result(state) == summary
    with pytest.raises(ValueError, match="warehouse broke"):
        cycle_result(Failed(data=ValueError("warehouse broke")))
    with pytest.raises(TypeError, match="without a summary"):
        cycle_result(Completed(data={"not": "a summary"}))


HOSTILE = "Forum [x](javascript:alert(1)) <b>gras</b> | cellule"


def _situation() -> Situation:
    return Situation(
        alerts=[
            {
                "alert_id": "al-2",
                "topic": "urgences",
                "level": "alerte",
                "opened_at": datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
                "mentions": 9,
                "taken_by": HOSTILE,
                "taken_at": datetime(2026, 12, 7, 15, 20, tzinfo=UTC),
            },
            {
                "alert_id": "al-1",
                "topic": "marque",
                "level": "crise",
                "opened_at": datetime(2026, 12, 7, 16, 0, tzinfo=UTC),
                "mentions": 15,
                "taken_by": None,
                "taken_at": None,
            },
        ],
        sources_down=[
            {
                "source": HOSTILE,
                "state": "not_a_feed",
                "since": datetime(2026, 12, 7, 14, 0, tzinfo=UTC),
                "error": "not a feed: an HTML page",
            }
        ],
    )


def test_the_situation_shows_open_alerts_most_severe_first_who_took_charge_and_sources_down() -> (
    None
):
    markdown = situation_markdown(_situation(), now=NOW, language="fr", timezone="America/Toronto")
    lines = markdown.splitlines()
    assert lines[0] == "# Situation à 2026-12-07 11:30 (America\\/Toronto)"
    assert "| niveau | sujet | ouverte | mentions | prise en charge |" in lines
    crisis = lines.index("| **CRISE** | marque | 2026-12-07 11:00 | 15 | **personne** |")
    alert = next(i for i, line in enumerate(lines) if line.startswith("| **ALERTE** | urgences"))
    assert crisis < alert  # the most severe first
    assert "2026-12-07 10:20 |" in lines[alert]
    assert (
        "| ne renvoie pas de flux | 2026-12-07 09:00 | une page web au lieu d’un flux |" in markdown
    )
    assert "HTML" not in markdown  # the recorded error is English: said in French instead
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<a " not in html and "<b>" not in html  # names from feeds and people stay text
    english = situation_markdown(Situation([], []), now=NOW, language="en", timezone="UTC")
    assert "No open alert." in english and "Every source answers." in english
    assert not re.search(r"[éèàô]", english)
