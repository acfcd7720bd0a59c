"""Email delivery through a real aiosmtpd server: sent once, failures kept for the next try."""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from tasks.notify.delivery import MAX_ATTEMPTS, DeliveryReport, deliver
from tests.hostile import (
    Behaviour,
    hostile_server,
    smtp_drops_mid_data,
    smtp_never_greets,
    smtp_refuses_permanently,
)
from vigie.localservers import MailSink, free_port
from vigie.models import OutboxMessage
from vigie.settings import Email, Secrets
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def _email(port: int, **changes: object) -> Email:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "vigie@laiterie-boreale.example",
        "security": "none",
        "timeout_s": 5,
    }
    options.update(changes)
    return Email(**options)  # type: ignore[arg-type]


def _message(n: int = 1, subject: str = "[Vigie][ALERTE] Laiterie Boréale : pic") -> OutboxMessage:
    return OutboxMessage(
        message_id=f"al-{n}.opened",
        kind="alert",
        recipients=("awa.diallo@laiterie-boreale.example", "louis@laiterie-boreale.example"),
        subject=subject,
        html="<html><body><p>Rappel de fromages</p></body></html>",
        alert_id=f"al-{n}",
        critical=True,
    )


@contextmanager
def _store(path: Path) -> Iterator[Store]:
    with open_warehouse(path) as con:
        yield Store(con)


def _deliver(
    path: Path, email: Email, secrets: Secrets | None = None, *, now: dt.datetime = NOW
) -> DeliveryReport:
    return deliver(
        email=email, secrets=secrets or Secrets(), now=now, open_store=lambda: _store(path)
    )


def _queue(path: Path, *messages: OutboxMessage) -> None:
    with open_warehouse(path) as con:
        for message in messages:
            Store(con).queue(message, NOW)


def test_a_queued_message_arrives_once_with_its_subject_and_recipients(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    report = _deliver(path, _email(mail_sink.port))
    again = _deliver(path, _email(mail_sink.port))
    received = mail_sink.messages()
    assert report.sent == ["al-1.opened"] and again.sent == []
    assert len(received) == 1
    assert received[0]["Subject"] == "[Vigie][ALERTE] Laiterie Boréale : pic"
    assert [a.addr_spec for a in received[0]["To"].addresses] == [
        "awa.diallo@laiterie-boreale.example",
        "louis@laiterie-boreale.example",
    ]
    assert received[0]["Message-ID"] == "<al-1.opened@vigie>"
    assert "Rappel de fromages" in received[0].get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_queueing_the_same_message_twice_keeps_one(tmp_path: Path, mail_sink: MailSink) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message(), _message())
    _deliver(path, _email(mail_sink.port))
    assert len(mail_sink.messages()) == 1


def test_a_server_that_is_down_keeps_the_message_for_the_next_cycle(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    """A digest backs off (alerts do not: test_delivery_claims.py)."""
    path = tmp_path / "wh.duckdb"
    _queue(path, replace(_message(), message_id="digest.1", kind="digest", critical=False))
    down = _deliver(path, _email(free_port()))
    with open_warehouse(path) as con:
        attempts, error, sent_at = con.execute(
            "SELECT attempts, last_error, sent_at FROM outbox"
        ).fetchall()[0]
    assert down.sent == [] and "digest.1" in down.failed
    assert attempts == 1 and sent_at is None and "ConnectionRefusedError" in error
    too_soon = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(seconds=30))
    assert too_soon.sent == []  # the back-off after one failure is a minute
    later = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=2))
    assert later.sent == ["digest.1"]
    assert len(mail_sink.messages()) == 1


def test_header_injection_in_a_subject_stays_on_one_line(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message(subject="Rappel\r\nBcc: intrus@evil.example\r\nX-Evil: 1"))
    _deliver(path, _email(mail_sink.port))
    received = mail_sink.messages()[0]
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["Subject"] == "Rappel Bcc: intrus@evil.example X-Evil: 1"


def test_a_message_without_recipients_is_not_sent(tmp_path: Path, mail_sink: MailSink) -> None:
    path = tmp_path / "wh.duckdb"
    lonely = OutboxMessage("al-9.opened", "alert", (), "s", "<p>x</p>", "al-9")
    _queue(path, lonely)
    report = _deliver(path, _email(mail_sink.port))
    assert report.failed == {"al-9.opened": "no recipients (is the crisis cell configured?)"}
    assert mail_sink.messages() == []


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def test_starttls_with_login_verifies_the_certificate(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sender = "vigie@laiterie-boreale.example"
    secure = dict(security="starttls", username=sender, ca_file=cert)
    with MailSink(
        tmp_path / "tls-inbox", tls_context=context, authenticator=_check_password
    ) as sink:
        path = tmp_path / "wh.duckdb"
        _queue(path, _message(1))
        wrong = _deliver(path, _email(sink.port, **secure), Secrets(smtp_password="nope"))
        untrusted = _deliver(
            path,
            _email(sink.port, security="starttls", username=sender),
            Secrets(smtp_password="s3cret"),
            now=NOW + dt.timedelta(minutes=2),
        )
        right = _deliver(
            path,
            _email(sink.port, **secure),
            Secrets(smtp_password="s3cret"),
            now=NOW + dt.timedelta(minutes=10),
        )
        received = sink.messages()
    assert "SMTP 535" in wrong.failed["al-1.opened"]
    assert "SSLCertVerificationError" in untrusted.failed["al-1.opened"]
    assert right.sent == ["al-1.opened"]
    assert len(received) == 1


def test_a_451_answer_keeps_the_message_and_it_arrives_once_later(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    mail_sink.refuse_with = "451 4.3.0 Mailbox busy, try again later"
    refused = _deliver(path, _email(mail_sink.port))
    assert "SMTP 451" in refused.failed["al-1.opened"]
    mail_sink.refuse_with = None
    later = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=2))
    again = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=5))
    assert later.sent == ["al-1.opened"] and again.sent == []
    assert len(mail_sink.messages()) == 1


KILLED_AFTER_ACCEPT = """
import os, sys
from pathlib import Path
from contextlib import contextmanager
from datetime import datetime, UTC
from tasks.notify.delivery import deliver
from vigie.settings import Email, Secrets
from warehouse.connection import open_warehouse
from warehouse.store import Store

@contextmanager
def store():
    with open_warehouse(Path(sys.argv[1])) as con:
        yield Store(con)

email = Email(host="127.0.0.1", port=int(sys.argv[2]), sender="vigie@laiterie-boreale.example",
              security="none", timeout_s=5)
# The server has accepted the message; the process dies before it is marked sent.
deliver(email=email, secrets=Secrets(), now=datetime.now(UTC), open_store=store,
        on_accepted=lambda message_id: os._exit(9))
"""


def _killed_right_after_the_server_accepted(path: Path, port: int, script: Path) -> None:
    script.write_text(KILLED_AFTER_ACCEPT, encoding="utf-8")
    died = subprocess.run(
        [sys.executable, str(script), str(path), str(port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 9, died.stderr[-2000:]


def test_a_process_killed_right_after_sending_never_sends_a_second_copy(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    """A digest (or any mail but an alert or an escalation) whose sender died is uncertain."""
    path = tmp_path / "wh.duckdb"
    _queue(path, replace(_message(), message_id="digest.1", kind="digest", critical=False))
    _killed_right_after_the_server_accepted(path, mail_sink.port, tmp_path / "killed.py")
    assert len(mail_sink.messages()) == 1
    after = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    assert after.uncertain == ["digest.1"] and after.sent == []
    assert len(mail_sink.messages()) == 1  # never a second copy
    with open_warehouse(path) as con:
        store = Store(con)
        [(message_id, *_)] = store.undelivered(MAX_ATTEMPTS)
        assert message_id == "digest.1"
        # Once someone has checked it did not arrive, it can be sent again on purpose.
        assert store.resend("digest.1")


def test_an_alert_whose_sender_was_killed_after_sending_goes_once_more_as_a_second_sending(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    """The process is gone (this machine, its pid ended): its claim is dead at once, and the
    alert, whose first copy may or may not have arrived, goes once more, marked as such."""
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    _killed_right_after_the_server_accepted(path, mail_sink.port, tmp_path / "killed.py")
    after = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    assert after.uncertain == ["al-1.opened"] and after.sent == ["al-1.opened"]
    again = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    assert again.sent == [] and again.uncertain == []
    first, second = mail_sink.messages()
    assert first["Message-ID"] == second["Message-ID"] == "<al-1.opened@vigie>"
    line = "Second envoi : le premier envoi de ce message n’a pas pu être confirmé."
    assert line not in first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert line in second.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_quiet_hours_hold_a_digest_and_release_it_after(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    digest = replace(_message(2), message_id="digest.daily.1", kind="digest", critical=False)
    _queue(path, digest, _message(1))
    email = _email(mail_sink.port, quiet_hours="22:00-07:00")
    night = dt.datetime(2026, 11, 25, 23, 30, tzinfo=dt.UTC)  # UTC is the zone here
    held = _deliver(path, email, now=night)
    assert held.sent == ["al-1.opened"]  # the alert passes
    assert held.held == {"digest.daily.1": "quiet hours"}
    assert _deliver(path, email, now=night + dt.timedelta(hours=7)).sent == []  # 06:30
    morning = _deliver(path, email, now=night + dt.timedelta(hours=7, minutes=31))
    assert morning.sent == ["digest.daily.1"]
    assert [m["Message-ID"] for m in mail_sink.messages()] == [
        "<al-1.opened@vigie>",
        "<digest.daily.1@vigie>",
    ]


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        (smtp_drops_mid_data, "SMTPServerDisconnected"),
        (smtp_never_greets, "timed out"),
        (smtp_refuses_permanently, "every recipient was refused (SMTP 554: 5.7.1 Relay access"),
    ],
)
def test_a_hostile_smtp_server_loses_nothing_and_the_message_arrives_once_later(
    tmp_path: Path, mail_sink: MailSink, behaviour: Behaviour, reason: str
) -> None:
    """Dropped mid-DATA, never greeting, refusing for good: the message stays in the outbox
    with the reason, and a good server later gets it once."""
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    with hostile_server(behaviour) as url:
        port = int(url.split(":")[2].split("/")[0])
        refused = _deliver(path, _email(port, timeout_s=2))
    assert refused.sent == []
    assert reason in refused.failed["al-1.opened"]
    later = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=2))
    again = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=5))
    assert later.sent == ["al-1.opened"] and again.sent == []
    assert len(mail_sink.messages()) == 1
