"""Escalation up the crisis cell with a controllable clock, delivered to a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment
from tasks.notify.alerts import raise_alerts
from tasks.notify.delivery import DeliveryReport, deliver
from tasks.notify.escalation import due_pagings, escalate_unacknowledged, next_level
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.localservers import MailSink
from vigie.models import VolumeSignal
from vigie.settings import Secrets, Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
# CELL_TOML: Awa (lead) and Louis (spokesperson) at level 1, Sophie (legal) at level 2; one
# more level for the executive.
EXECUTIVE = """
[[cell.members]]
name = "Marc Gagnon"
email = "marc.gagnon@laiterie-boreale.example"
role = "executive"
level = 4
"""


def _settings(tmp_path: Path, port: int) -> Settings:
    return settings_from(
        tmp_path,
        MINIMAL_TOML.replace(
            '[email]\nsender = "vigie@laiterie-boreale.example"\n',
            f'[email]\nsender = "vigie@laiterie-boreale.example"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\ntimeout_s = 5\n',
        )
        + CELL_TOML
        + EXECUTIVE
        + """
[escalation]
delay_minutes = 30
""",
    )


def _open_alert(store: Store, settings: Settings) -> str:
    signal = VolumeSignal("marque", NOW - timedelta(hours=1), NOW, 40, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(72.0, "crise", {"volume": 35.0}, {})  # type: ignore[arg-type]
    changes = raise_alerts(
        store, settings, [TopicAssessment(signal, 0.99, severity)], now=NOW, run_url=None
    )
    return changes.opened[0]


@contextmanager
def _store(path: Path) -> Iterator[Store]:
    with open_warehouse(path) as con:
        yield Store(con)


def _tick(path: Path, settings: Settings, at: datetime) -> tuple[list[str], DeliveryReport]:
    with _store(path) as store:
        paged = escalate_unacknowledged(store, settings, now=at)
    report = deliver(
        email=settings.email,
        secrets=Secrets(),
        now=at,
        open_store=lambda: _store(path),
    )
    return paged, report


def _to(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.addr_spec for a in message["To"].addresses]


def test_an_unacknowledged_alert_climbs_the_levels_until_the_top(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    settings = _settings(tmp_path, mail_sink.port)
    path = tmp_path / "wh.duckdb"
    with _store(path) as store:
        alert_id = _open_alert(store, settings)
    assert _tick(path, settings, NOW + timedelta(minutes=29))[0] == []
    paged, _ = _tick(path, settings, NOW + timedelta(minutes=30))
    assert paged == [f"{alert_id}: level 1 -> 2"]
    assert _tick(path, settings, NOW + timedelta(minutes=45))[0] == []  # not yet again
    assert _tick(path, settings, NOW + timedelta(minutes=60))[0] == [f"{alert_id}: level 2 -> 4"]
    assert _tick(path, settings, NOW + timedelta(minutes=90))[0] == []  # nobody above
    received = mail_sink.messages()
    assert [_to(m) for m in received] == [
        ["awa.diallo@laiterie-boreale.example", "louis.tremblay@laiterie-boreale.example"],
        ["sophie.roy@laiterie-boreale.example"],
        ["marc.gagnon@laiterie-boreale.example"],
    ]
    escalation = received[1]
    assert escalation["Subject"] == (
        "[Vigie][ESCALADE][CRISE] Laiterie Boréale : « marque » sans prise en charge depuis 30 min"
    )
    text = escalation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f'vigie ack {alert_id} --by "Votre nom"' in text
    assert "Awa Diallo (responsable de la cellule" in text
    with open_warehouse(path) as con:
        events = con.execute(
            "SELECT kind, detail FROM alert_events WHERE kind = 'cell_escalated' "
            "ORDER BY occurred_at"
        ).fetchall()
    assert [json.loads(d)["to_level"] for _, d in events] == [2, 4]


def test_an_acknowledgement_stops_the_escalation(tmp_path: Path, mail_sink: MailSink) -> None:
    settings = _settings(tmp_path, mail_sink.port)
    path = tmp_path / "wh.duckdb"
    with _store(path) as store:
        alert_id = _open_alert(store, settings)
        store.acknowledge_alert(alert_id, "Awa Diallo", NOW + timedelta(minutes=20))
    assert _tick(path, settings, NOW + timedelta(hours=3))[0] == []
    assert len(mail_sink.messages()) == 1  # the alert itself, nothing more


def test_a_rerun_at_the_same_moment_pages_once(tmp_path: Path, mail_sink: MailSink) -> None:
    settings = _settings(tmp_path, mail_sink.port)
    path = tmp_path / "wh.duckdb"
    with _store(path) as store:
        _open_alert(store, settings)
    at = NOW + timedelta(minutes=31)
    first = _tick(path, settings, at)[0]
    second = _tick(path, settings, at)[0]
    assert len(first) == 1 and second == []
    assert len(mail_sink.messages()) == 2


def test_next_level_skips_empty_levels_and_stops_at_the_top(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 25)
    members = settings.cell.members
    assert [next_level(members, n) for n in (1, 2, 3, 4)] == [2, 4, 4, None]
    assert due_pagings([], members, delay=timedelta(minutes=1), now=NOW) == []
