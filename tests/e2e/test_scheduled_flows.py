"""The readiness and escalation-check flows under a real (temporary) Prefect server, with a real
SMTP server: what they send, what they say in their artifacts, and that a rerun sends nothing
twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.publish.report import md_text
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

TEAMS = """
[[teams]]
name = "Service à la clientèle"
emails = ["clientele@laiterie-boreale.example"]

[[teams]]
name = "Ontario <sales>"
emails = ["sales-on@laiterie-boreale.example"]
language = "en"
cron = "0 8 * * 1"
"""
NO_SOURCE = [{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}]


def _markdown(key: str) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None
    return str(artifact.data)


def test_the_readiness_flow_reminds_each_team_once_per_period(
    prefect_harness: str, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    from flows.readiness import send_readiness_reminders

    config = write_config(sources=NO_SOURCE, smtp_port=mail_sink.port, extra=TEAMS)
    first = send_readiness_reminders(config_path=str(config))
    assert [(o["team"], o["outcome"]) for o in first] == [
        ("Service à la clientèle", "sent"),
        ("Ontario <sales>", "sent"),
    ]
    assert sorted(str(m["To"]) for m in mail_sink.messages()) == [
        "clientele@laiterie-boreale.example",
        "sales-on@laiterie-boreale.example",
    ]
    again = send_readiness_reminders(config_path=str(config))
    assert {o["outcome"] for o in again} == {"already_sent"}
    assert len(mail_sink.messages()) == 2
    markdown = _markdown("readiness")
    assert "| Ontario \\<sales\\> | already sent |" in markdown


def test_the_escalation_check_flow_pages_the_next_level_once(
    prefect_harness: str, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    from flows.escalation_check import escalation_check
    from tasks.detect.signals import Severity
    from tasks.detect.volume import TopicAssessment
    from tasks.notify.alerts import raise_alerts
    from vigie.models import VolumeSignal
    from vigie.settings import load_settings
    from warehouse.store import Store

    config = write_config(sources=NO_SOURCE, smtp_port=mail_sink.port)
    assert escalation_check(config_path=str(config))["escalations"] == []
    assert "No alert waits for escalation." in _markdown("escalation-check")

    settings = load_settings(config)
    opened = datetime.now(UTC) - timedelta(hours=2)  # escalation.delay_minutes is 30
    signal = VolumeSignal(
        "marque", opened - timedelta(hours=1), opened, 40, 3.0, 1.0, 0.99, 9.0, True
    )
    severity = Severity(72.0, "crise", {"volume": 35.0}, {})  # type: ignore[arg-type]
    with open_warehouse(settings.warehouse_path) as con:
        changes = raise_alerts(
            Store(con),
            settings,
            [TopicAssessment(signal, 0.99, severity)],
            now=opened,
            run_url=None,
        )
    [alert_id] = changes.opened
    result = escalation_check(config_path=str(config))
    assert result["escalations"] == [f"{alert_id}: level 1 -> 2"]
    assert f"- {md_text(alert_id)}: level 1 \\-\\> 2" in _markdown("escalation-check")
    paged = [m for m in mail_sink.messages() if "sophie.roy" in str(m["To"])]
    assert len(paged) == 1
    assert escalation_check(config_path=str(config))["escalations"] == []  # nobody paged twice
    assert len([m for m in mail_sink.messages() if "sophie.roy" in str(m["To"])]) == 1
