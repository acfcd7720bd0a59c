"""The `situation` the Prefect UI shows, read from a real DuckDB warehouse: alerts not resolved
with who took charge of each, the sources down, drills left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment
from tasks.notify.alerts import raise_alerts
from tasks.publish.situation import read_situation, situation_markdown
from tests.conftest import ConfigWriter
from vigie.models import VolumeSignal
from vigie.settings import load_settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def _assessment(topic: str, level: str, mentions: int) -> TopicAssessment:
    signal = VolumeSignal(topic, NOW - timedelta(hours=1), NOW, mentions, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(72.0, level, {"volume": 35.0}, {})  # type: ignore[arg-type]
    return TopicAssessment(signal, 0.99, severity)


def test_the_situation_lists_open_alerts_with_who_took_charge_and_the_sources_down(
    write_config: ConfigWriter,
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}], smtp_port=25
    )
    settings = load_settings(config)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        changes = raise_alerts(
            store, settings, [_assessment("marque", "crise", 40)], now=NOW, run_url=None
        )
        [alert_id] = changes.opened
        before = read_situation(store)
        store.acknowledge_alert(alert_id, "Awa Diallo", NOW + timedelta(minutes=7))
        store.acknowledge_alert(alert_id, "Louis Tremblay", NOW + timedelta(minutes=9))
        store.con.execute(
            "INSERT INTO sources (name, kind, url, platform, tier, drill) VALUES "
            "('Le Quotidien', 'rss', 'http://127.0.0.1:9/feed.xml', 'news', 1, false), "
            "('Exercice', 'rss', 'http://127.0.0.1:9/drill.xml', 'news', 1, true)"
        )
        store.set_health("Exercice", "failing", "a drill's source", NOW)
        store.set_health("Le Quotidien", "failing", "3 failed cycle(s) in a row: refused", NOW)
        after = read_situation(store)
    [waiting] = before.alerts
    assert (waiting["alert_id"], waiting["level"], waiting["topic"]) == (
        alert_id,
        "crise",
        "marque",
    )
    assert waiting["taken_by"] is None and waiting["mentions"] == 40
    [taken] = after.alerts
    # The first to take charge is the one who has it; a second `vigie ack` changes nothing.
    assert taken["taken_by"] == "Awa Diallo"
    assert taken["taken_at"] == NOW + timedelta(minutes=7)
    [down] = after.sources_down
    assert down["source"] == "Le Quotidien" and down["state"] == "failing"
    markdown = situation_markdown(
        after, now=NOW, language="fr", timezone=settings.organisation.timezone
    )
    assert (
        "| **CRISE** | marque | 2026-12-07 11:00 | 40 | Awa Diallo, 2026-12-07 11:07 |" in markdown
    )
    assert "| Le Quotidien | en échec | 2026-12-07 11:00 |" in markdown
