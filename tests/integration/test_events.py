"""The Prefect events of alerts and sources, built from what a real DuckDB warehouse recorded
(alerts opened, escalated, acknowledged; sources down and back over real HTTP), and the emitter's
guards, without a Prefect server."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tasks.publish.events as events
from tasks.collect.fetch import collect_sources, fetch_sources
from tasks.collect.health import check_source_health, entry_freshness
from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment
from tasks.notify.alerts import AlertChanges, raise_alerts
from tasks.notify.escalation import escalate_unacknowledged
from tasks.publish.events import (
    ALERT_ACKNOWLEDGED,
    ALERT_ESCALATED,
    ALERT_OPENED,
    SOURCE_DOWN,
    SOURCE_RECOVERED,
    VigieEvent,
    acknowledged_event,
    cycle_events,
    emit_vigie_events,
    parse_health_change,
    source_slug,
)
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import OutboxMessage, VolumeSignal
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _settings(tmp_path: Path, extra: str = "") -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + CELL_TOML + extra)


def _raise(
    store: Store, settings: Settings, level: str, score: float, at: datetime, topic: str = "marque"
) -> AlertChanges:
    signal = VolumeSignal(topic, at - timedelta(hours=1), at, 40, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(score, level, {"volume": 35.0}, {})  # type: ignore[arg-type]
    return raise_alerts(
        store, settings, [TopicAssessment(signal, 0.99, severity)], now=at, run_url=None
    )


def test_an_opened_alert_is_an_event_about_the_alert_with_the_contract_labels(
    tmp_path: Path,
) -> None:
    from prefect.events import Event

    settings = _settings(tmp_path)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        changes = _raise(store, settings, "crise", 72.0, NOW)
        [event] = cycle_events(store, changes, [], [], ui_url="http://127.0.0.1:4200/runs/x")
    [alert_id] = changes.opened
    assert event.name == ALERT_OPENED == "vigie.alert.opened"
    assert event.resource == {
        "prefect.resource.id": f"vigie.alert.{alert_id}",
        "prefect.resource.name": "marque",
        "vigie.alert.level": "crise",
        "vigie.alert.topic": "marque",
        "vigie.drill": "false",
    }
    assert event.payload["level"] == "crise"
    assert event.payload["severity"] == 72.0
    assert event.payload["topic"] == "marque"
    assert event.payload["mentions"] == 40
    assert event.payload["status"] == "open"
    assert event.payload["reason"]
    assert event.payload["ui_url"] == "http://127.0.0.1:4200/runs/x"
    # Prefect accepts it as it is.
    Event.model_validate(
        {"event": event.name, "resource": event.resource, "payload": event.payload}
    )


def test_a_rising_level_and_a_page_up_the_cell_are_both_escalations(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "\n[escalation]\ndelay_minutes = 30\n")
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        [alert_id] = _raise(store, settings, "alerte", 55.0, NOW).opened
        risen = _raise(store, settings, "crise", 80.0, NOW + timedelta(minutes=10))
        assert risen.escalated == [alert_id]
        paged = escalate_unacknowledged(store, settings, now=NOW + timedelta(minutes=31))
        built = cycle_events(store, risen, paged, [])
    assert [e.name for e in built] == [ALERT_ESCALATED, ALERT_ESCALATED]
    level, cell = built
    assert level.payload["escalation"] == "level"
    assert level.resource["vigie.alert.level"] == "crise"
    assert level.payload["severity"] == 80.0
    assert cell.payload["escalation"] == "cell"
    # CELL_TOML: level 1 (lead, spokesperson), then level 2 (legal).
    assert (cell.payload["from_level"], cell.payload["to_level"]) == (1, 2)
    assert cell.resource["prefect.resource.id"] == f"vigie.alert.{alert_id}"


def test_an_acknowledgement_names_who_took_charge_and_a_drill_alert_is_labelled(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        [alert_id] = _raise(store, settings, "crise", 72.0, NOW, topic="drill-incendie").opened
        # A drill's alert mail is drill mail: that marks the alert (before migration 012).
        drill_mail = OutboxMessage(
            f"{alert_id}.drill", "alert", ("awa@x.example",), "s", "<p>h</p>", alert_id, drill=True
        )
        store.queue(drill_mail, NOW)
        assert store.acknowledge_alert(alert_id, "Awa Diallo", NOW) == "open"
        event = acknowledged_event(store, alert_id, "Awa\x1b[31m Diallo\n")
        assert acknowledged_event(store, "al-unknown", "x") is None
    assert event is not None
    assert event.name == ALERT_ACKNOWLEDGED
    assert event.payload["by"] == "Awa [31m Diallo"  # one line: the escape character is out
    assert event.payload["status"] == "acknowledged"
    assert event.resource["vigie.drill"] == "true" and event.payload["drill"] is True
    assert event.resource["vigie.alert.topic"] == "drill-incendie"


def _source_settings(tmp_path: Path, url: str) -> Settings:
    return settings_from(
        tmp_path,
        MINIMAL_TOML.replace("https://quotidien-du-nord.example/rss.xml", url)
        + CELL_TOML
        + "\n[collection]\nconnect_timeout_s = 1\nread_timeout_s = 1\ndeadline_s = 3\n"
        "retries = 0\n",
    )


def _health_cycle(settings: Settings, now: datetime) -> list[VigieEvent]:
    """Fetch, load and judge health as the watch cycle does; return the cycle's events."""
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        fetched = fetch_sources(
            settings.sources, store.source_states(), collection=settings.collection
        )
        mentions, outcomes = collect_sources(
            settings.sources, fetched, collected_at=now, max_entries=100
        )
        store.load_cycle(f"c{now:%H%M%S}", settings.sources, outcomes, mentions, [], now)
        changes = check_source_health(store, settings, entry_freshness(mentions), now=now)
        return cycle_events(store, AlertChanges(), [], changes)


def test_a_source_that_stops_answering_with_a_feed_is_down_then_recovered(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    page = "<!DOCTYPE html><html><body><h1>Nous avons déménagé</h1></body></html>"
    url = feed_server.set("/rss.xml", page, content_type="text/html; charset=utf-8")
    settings = _source_settings(tmp_path, url)

    [down] = _health_cycle(settings, NOW)
    assert down.name == SOURCE_DOWN == "vigie.source.down"
    assert down.resource == {
        "prefect.resource.id": "vigie.source.le-quotidien-du-nord",
        "prefect.resource.name": "Le Quotidien du Nord",
    }
    assert down.payload == {
        "source": "Le Quotidien du Nord",
        "state": "not_a_feed",
        "previous": "ok",
        "reason": "answers with an HTML page instead of a feed",
    }
    assert _health_cycle(settings, NOW + timedelta(minutes=10)) == []  # told once

    feed_server.set(
        "/rss.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Q</title>'
        "<item><title>Laiterie Boréale</title><link>https://q.example/1</link></item>"
        "</channel></rss>",
    )
    [recovered] = _health_cycle(settings, NOW + timedelta(minutes=20))
    assert recovered.name == SOURCE_RECOVERED
    assert recovered.resource["prefect.resource.id"] == "vigie.source.le-quotidien-du-nord"
    assert (recovered.payload["previous"], recovered.payload["state"]) == ("not_a_feed", "ok")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Blogue du terroir", "blogue-du-terroir"),
        ("Le Quotidien : Édition spéciale !", "le-quotidien-edition-speciale"),
        ("Cœur/Œuvre  r/Québec", "coeur-oeuvre-r-quebec"),
        ("!!!", "source"),
        ("x" * 300, "x" * 80),
    ],
    ids=["plain", "accents-and-punctuation", "ligatures", "nothing-left", "bounded"],
)
def test_a_source_resource_id_is_a_stable_lowercase_slug(name: str, slug: str) -> None:
    assert source_slug(name) == slug


def test_a_health_line_parses_even_when_the_source_name_holds_a_colon() -> None:
    assert parse_health_change("Radio : Info: ok -> failing") == ("Radio : Info", "ok", "failing")
    assert parse_health_change("not a health line") is None


def test_labels_and_reasons_from_the_network_are_one_bounded_line() -> None:
    event = events.source_event("Le\u202e Quotidien\r\nX-Evil: 1", "ok", "failing", "e" * 5000)
    assert event.resource["prefect.resource.name"] == "Le Quotidien X-Evil: 1"
    assert len(event.payload["reason"]) == events.MAX_REASON_CHARS


def test_without_a_prefect_api_nothing_is_emitted_and_no_server_is_started() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    event = events.source_event("Le Quotidien", "ok", "failing", "HTTP 500")
    # Other tests of the session may have left workers for their own servers: compare.
    workers_before = dict(EventsWorker._instances)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert PREFECT_API_URL.value() is None
        assert emit_vigie_events([event]) == 0
        # Prefect would have started a temporary server and an events worker to send it.
        assert dict(EventsWorker._instances) == workers_before


def test_a_failure_to_emit_is_logged_once_and_never_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr(events, "_failure_logged", False)
    invalid = VigieEvent(ALERT_OPENED, {"prefect.resource.id": ""}, {})  # Prefect refuses it
    # A port nothing listens on: the event is refused before anything is sent.
    with (
        temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}),
        caplog.at_level(logging.DEBUG, logger="tasks.publish.events"),
    ):
        assert emit_vigie_events([invalid]) == 0
        assert emit_vigie_events([invalid]) == 0
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Prefect events not emitted" in warnings[0].getMessage()
    assert "Traceback" not in caplog.text


def test_a_prefect_server_answers_even_when_it_asks_for_credentials(
    feed_server: FeedServer,
) -> None:
    from vigie.localservers import free_port

    feed_server.set("/ok/api/health", "true", content_type="application/json")
    feed_server.set("/locked/api/health", "no", status=401)
    assert events.prefect_server_answers(feed_server.url("/ok/api"))
    assert events.prefect_server_answers(feed_server.url("/locked/api/"))
    assert not events.prefect_server_answers(f"http://127.0.0.1:{free_port()}/api")
    assert not events.prefect_server_answers("not a url")
