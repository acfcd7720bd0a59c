"""The drill's plain functions: its id, its synthetic feeds, its settings, the wait for the
acknowledgement and the report, without Prefect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.notify.drill import (
    FEEDS,
    LINK_BASE,
    DrillOutcome,
    check_drill_topic,
    drill_id_for,
    drill_items,
    drill_markdown,
    drill_outcome,
    drill_report_message,
    drill_settings,
    format_duration,
    wait_for_acknowledgement,
)
from tasks.notify.emails import as_drill
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.errors import ConfigError
from vigie.models import OutboxMessage
from vigie.query import text_words
from vigie.settings import Settings
from warehouse.drills import AlertState, DrillRecord

STARTED = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
INJECTED = STARTED + timedelta(minutes=2)


def _settings(tmp_path: Path, language: str = "fr") -> Settings:
    text = MINIMAL_TOML.replace('language = "fr"', f'language = "{language}"')
    return settings_from(tmp_path, text + CELL_TOML)


def _record(**changes: object) -> DrillRecord:
    values: dict[str, object] = {
        "drill_id": "drill-novembre",
        "name": "Novembre",
        "topic": "drill-novembre",
        "started_at": STARTED,
        "injected_at": INJECTED,
        "detected_at": INJECTED + timedelta(seconds=12),
        "alert_id": "al-202611251402-1a2b3c4d",
        "alert_sent_at": INJECTED + timedelta(seconds=13),
        "acknowledged_at": INJECTED + timedelta(seconds=13 + 125),
        "acknowledged_by": "Awa Diallo",
        "status": "acknowledged",
        "time_to_detect_s": 12.0,
        "time_to_ack_s": 125.0,
        "ack_wait_minutes": 30,
        "finished_at": INJECTED + timedelta(minutes=3),
    }
    values.update(changes)
    return DrillRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Exercice de Novembre", "drill-exercice-de-novembre"),
        ("  Crise: l'usine Boréale !! ", "drill-crise-l-usine-boreale"),
        ("exercice-de-novembre", "drill-exercice-de-novembre"),
    ],
    ids=["words", "accents-and-punctuation", "already-a-slug"],
)
def test_the_drill_id_is_the_name_in_lower_case_ascii_words(name: str, expected: str) -> None:
    assert drill_id_for(name) == expected


def test_a_name_without_letters_gets_a_stable_hash_and_ids_are_bounded() -> None:
    assert drill_id_for("!!!") == drill_id_for("!!!")
    assert drill_id_for("!!!") != drill_id_for("???")
    assert len(drill_id_for("x" * 80)) <= len("drill-") + 48


def test_calm_feeds_hold_three_quiet_days_and_the_crisis_comes_only_once_injected() -> None:
    feed = FEEDS[0]
    calm = drill_items(
        feed,
        drill_id="drill-x",
        organisation="Laiterie Boréale",
        language="fr",
        started_at=STARTED,
        injected_at=None,
    )
    assert all(STARTED - timedelta(days=3) <= i.published_at < STARTED for i in calm)
    crisis = drill_items(
        feed,
        drill_id="drill-x",
        organisation="Laiterie Boréale",
        language="fr",
        started_at=STARTED,
        injected_at=INJECTED,
    )
    new = [i for i in crisis if i not in calm]
    assert len(new) == 8
    assert all(INJECTED - timedelta(minutes=50) <= i.published_at < INJECTED for i in new)
    assert any("rappel" in i.title.lower() for i in new)
    # Deterministic: a rerun serves the same entries (and so loads nothing twice).
    assert crisis == drill_items(
        feed,
        drill_id="drill-x",
        organisation="Laiterie Boréale",
        language="fr",
        started_at=STARTED,
        injected_at=INJECTED,
    )


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_synthetic_entry_is_labelled_and_matched_by_the_drill_watch_alone(
    tmp_path: Path, language: str
) -> None:
    settings = _settings(tmp_path, language)
    drilled = drill_settings(
        settings, drill_id="drill-x", urls={f.label: "http://127.0.0.1/" for f in FEEDS}
    )
    [watch] = drilled.watch
    items = [
        item
        for feed in FEEDS
        for item in drill_items(
            feed,
            drill_id="drill-x",
            organisation=settings.organisation.name,
            language=language,
            started_at=STARTED,
            injected_at=INJECTED,
        )
    ]
    label = "[EXERCICE VIGIE]" if language == "fr" else "[VIGIE DRILL]"
    assert all(item.title.startswith(label) for item in items)
    assert all(item.link.startswith(f"{LINK_BASE}/drill-x/") for item in items)
    assert all(watch.parsed.matches(text_words(item.title)) for item in items)
    assert not watch.parsed.matches(text_words("Rappel de produits Laiterie Boréale"))


def test_drill_cycles_watch_only_the_drill_topic_and_sources(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    urls = {f.label: f"http://127.0.0.1:8000/drill/{f.label}.xml" for f in FEEDS}
    drilled = drill_settings(settings, drill_id="drill-x", urls=urls)
    assert [w.name for w in drilled.watch] == ["drill-x"]
    assert [(s.name, s.url, s.tier) for s in drilled.sources] == [
        ("drill-x/quotidien", urls["quotidien"], 1),
        ("drill-x/radio", urls["radio"], 2),
        ("drill-x/forum", urls["forum"], 3),
    ]
    # The cell, the email server and detection are the organisation's own.
    assert drilled.cell == settings.cell and drilled.detection == settings.detection


def test_a_drill_topic_may_not_be_a_configured_watch(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    check_drill_topic(settings, "drill-x")
    with pytest.raises(ConfigError, match="also a watch name"):
        check_drill_topic(settings, "marque")


def _state(status: str, acked: datetime | None = None) -> AlertState:
    return AlertState(status, INJECTED, "Awa" if acked else None, acked, INJECTED)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_wait_ends_as_soon_as_the_alert_is_acknowledged() -> None:
    clock = FakeClock()
    states = iter([_state("open"), _state("open"), _state("acknowledged", INJECTED)])
    found = wait_for_acknowledgement(
        lambda: next(states), wait=timedelta(minutes=5), poll_s=2, clock=clock, sleep=clock.sleep
    )
    assert found is not None and found.status == "acknowledged"
    assert clock.sleeps == [2, 2]


def test_the_wait_is_bounded_and_returns_the_alert_still_open() -> None:
    clock = FakeClock()
    found = wait_for_acknowledgement(
        lambda: _state("open"), wait=timedelta(seconds=5), poll_s=2, clock=clock, sleep=clock.sleep
    )
    assert found is not None and found.status == "open"
    assert clock.sleeps == [2, 2, 1]


def test_outcomes_measure_the_time_to_acknowledge_from_the_alert_email() -> None:
    acked = INJECTED + timedelta(seconds=90)
    assert drill_outcome(_state("acknowledged", acked)) == DrillOutcome(
        "acknowledged", INJECTED, acked, "Awa", 90.0
    )
    assert drill_outcome(_state("open")) == DrillOutcome("not_acknowledged", INJECTED)
    assert drill_outcome(None) == DrillOutcome("not_detected")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "—"), (4.4, "4 s"), (125, "2 min 05 s"), (3780, "1 h 03 min")],
)
def test_durations_read_as_people_say_them(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_the_french_report_gives_both_times_and_is_marked_as_a_drill(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    message = drill_report_message(settings, _record())
    assert message.message_id == "drill.drill-novembre.report"
    assert message.drill and message.kind == "drill_report"
    assert message.subject == "[EXERCICE] Vigie : bilan de l’exercice « Novembre »"
    assert message.recipients == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
        "sophie.roy@laiterie-boreale.example",
    )
    assert "Délai de détection : 12 s" in message.text
    assert "Délai de prise en charge : 2 min 05 s" in message.text
    assert "Prise en charge : Awa Diallo, mercredi 25 novembre 2026 à 09:04:18" in message.text
    assert "EXERCICE — ceci n’est pas une vraie crise" in message.html


def test_the_english_report_says_when_nobody_took_charge(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "en")
    record = _record(
        status="not_acknowledged", acknowledged_at=None, acknowledged_by=None, time_to_ack_s=None
    )
    message = drill_report_message(settings, record)
    assert message.subject == "[DRILL] Vigie: drill report “Novembre”"
    assert "Acknowledged: Not acknowledged within 30 min." in message.text
    assert "Time to detect: 12 s" in message.text


def test_names_are_escaped_in_the_report_and_single_line_in_its_subject(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    message = drill_report_message(settings, _record(name="<script>x</script>\r\nBcc: a@b.c"))
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "\n" not in message.subject and "\r" not in message.subject
    markdown = drill_markdown(_record(name="[x](javascript:alert(1)) | <b>"))
    assert "[x](javascript" not in markdown and "<b>" not in markdown


def test_the_artifact_says_it_is_a_drill_and_gives_the_times() -> None:
    markdown = drill_markdown(_record())
    assert markdown.startswith("# DRILL / EXERCICE — Novembre")
    assert "| time to detect | 12 s |" in markdown
    assert "| time to acknowledge | 2 min 05 s |" in markdown
    assert "| acknowledged by | Awa Diallo |" in markdown


def test_an_email_is_marked_as_a_drill_once() -> None:
    message = OutboxMessage(
        "al-1.escalation.L2",
        "escalation",
        ("sophie.roy@laiterie-boreale.example",),
        "[Vigie][ALERTE] escalade",
        '<html><body style="x"><p>corps</p></body></html>',
        text="corps",
        critical=True,
    )
    marked = as_drill(message, "fr")
    assert marked.drill and marked.critical
    assert marked.subject == "[EXERCICE] [Vigie][ALERTE] escalade"
    assert marked.html.startswith('<html><body style="x"><p style="background')
    assert marked.text.startswith("EXERCICE — ceci n’est pas une vraie crise")
    assert as_drill(marked, "fr") == marked


def test_the_drill_form_in_the_prefect_ui_has_help_and_bounds() -> None:
    from flows.drill import drill

    schema = drill.parameters.model_dump()
    properties = schema["properties"]
    assert schema["required"] == ["name"]
    assert properties["name"]["maxLength"] == 80 and properties["name"]["minLength"] == 1
    assert (
        properties["ack_wait_minutes"]["minimum"],
        properties["ack_wait_minutes"]["maximum"],
    ) == (
        1,
        1440,
    )
    assert all(
        properties[p].get("description") for p in ("name", "ack_wait_minutes", "config_path")
    )
