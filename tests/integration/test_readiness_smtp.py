"""Readiness reminders through a real aiosmtpd server: one per team and period, each team's
addresses and language, UTF-8 accents intact, nothing sent twice in the same period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.notify.readiness import send_readiness
from tests.configs import MINIMAL_TOML, READY_CELL_TOML, settings_from
from vigie.localservers import MailSink, free_port
from vigie.settings import Secrets, Settings
from warehouse.connection import open_warehouse

# Wednesday 2 December 2026, 10:00 in Toronto: both teams' current periods have begun.
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _settings(tmp_path: Path, port: int) -> Settings:
    smtp = f'host = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_s = 10\n'
    text = MINIMAL_TOML + smtp + '\n[warehouse]\npath = "wh/vigie.duckdb"\n' + READY_CELL_TOML
    return settings_from(tmp_path, text)


def _recipients(message: object) -> list[str]:
    return sorted(a.addr_spec for a in message["To"].addresses)  # type: ignore[index]


def _body(message: object, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))  # type: ignore[attr-defined]
    return str(part.get_content())


def test_each_team_gets_its_reminder_once_per_period(tmp_path: Path, mail_sink: MailSink) -> None:
    settings = _settings(tmp_path, mail_sink.port)
    path = settings.warehouse_path

    first = send_readiness(path, settings, Secrets(), now=NOW)
    assert [(o.team, o.outcome) for o in first] == [
        ("Service à la clientèle", "sent"),
        ("Ontario sales", "sent"),
    ]
    received = {m["Subject"]: m for m in mail_sink.messages()}
    assert len(received) == 2
    french = received[
        "[Vigie] La cellule de crise de Laiterie Boréale est prête — rappel pour "
        "Service à la clientèle"
    ]
    english = received[
        "[Vigie] Laiterie Boréale's crisis cell is ready — reminder for Ontario sales"
    ]
    assert _recipients(french) == [
        "clientele@laiterie-boreale.example",
        "superviseurs@laiterie-boreale.example",
    ]
    assert _recipients(english) == ["sales-on@laiterie-boreale.example"]
    assert "Transférez-le sans attendre à la cellule, avec le lien et une capture d’écran." in (
        _body(french, "html")
    )
    assert "Marc Côté" in _body(french, "html") and "Chloé Martin" in _body(english, "html")
    assert "Do not delete anything" in _body(english, "html")

    # A second run in the same period, even a week later, sends nothing.
    again = send_readiness(path, settings, Secrets(), now=NOW + timedelta(days=3))
    assert [o.outcome for o in again] == ["already_sent", "already_sent"]
    assert len(mail_sink.messages()) == 2

    # The next Monday opens a new period for the weekly team only.
    monday = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    weekly = send_readiness(path, settings, Secrets(), now=monday)
    assert [o.outcome for o in weekly] == ["already_sent", "sent"]
    assert len(mail_sink.messages()) == 3

    # --force reminds the chosen team now, once.
    forced = send_readiness(
        path, settings, Secrets(), now=monday, team="Service à la clientèle", force=True
    )
    assert [(o.team, o.outcome) for o in forced] == [("Service à la clientèle", "sent")]
    assert len(mail_sink.messages()) == 4

    with open_warehouse(path) as con:
        rows = con.execute(
            "SELECT count(*), count(sent_at), min(length(text)) FROM outbox "
            "WHERE kind = 'readiness'"
        ).fetchall()
    assert rows == [(4, 4, rows[0][2])] and rows[0][2] > 200


def test_an_unreachable_server_leaves_the_reminders_queued_with_the_reason(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, free_port())  # nothing listens there
    outcomes = send_readiness(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert [o.outcome for o in outcomes] == ["failed", "failed"]
    assert "ConnectionRefusedError" in outcomes[0].detail
    # The reminder waits in the outbox: the next run does not queue another one.
    again = send_readiness(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert [o.outcome for o in again] == ["already_queued", "already_queued"]
