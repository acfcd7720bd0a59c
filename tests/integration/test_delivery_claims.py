"""Exactly once against a real aiosmtpd server and real senders: a message the server received
without answering (uncertain), claims with an owner and a lease met by a second sender, and
critical mail tried again at every delivery during an SMTP outage (issue 20, items 2, 3, 12)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cli.main import main
from tasks.notify.delivery import (
    MAX_ATTEMPTS,
    SECOND_SENDING,
    DeliveryReport,
    claim_lease,
    conversation_limit,
    deliver,
)
from tests.conftest import ConfigWriter
from tests.hostile import hostile_server
from tests.integration.test_notify_smtp import NOW, _deliver, _email, _message, _queue, _store
from vigie.localservers import MailSink, free_port
from vigie.settings import Secrets
from warehouse.connection import open_warehouse
from warehouse.store import Store

FR_LINE = "Second envoi : le premier envoi de ce message n’a pas pu être confirmé."
EN_LINE = "Second sending: the first sending of this message could not be confirmed."


def _body(received: object) -> str:
    """The plain text and the HTML of a received email, together."""
    parts = [received.get_body((kind,)) for kind in ("plain", "html")]  # type: ignore[attr-defined]
    return "\n".join(part.get_content() for part in parts if part is not None)


def _undelivered(path: Path) -> list[str]:
    with open_warehouse(path) as con:
        return [row[0] for row in Store(con).undelivered(MAX_ATTEMPTS)]


def test_the_second_sending_lines_are_the_ones_the_rule_gives() -> None:
    assert SECOND_SENDING == {"fr": FR_LINE, "en": EN_LINE}


@pytest.mark.parametrize(
    ("kind", "language", "line"),
    [("alert", "fr", FR_LINE), ("escalation", "en", EN_LINE)],
    ids=["alert-fr", "escalation-en"],
)
def test_an_alert_the_server_received_without_answering_goes_once_more_as_a_second_sending(
    tmp_path: Path, mail_sink: MailSink, kind: str, language: str, line: str
) -> None:
    """The server keeps the whole message and drops the connection before answering: the
    outcome is uncertain, so the alert (or escalation) goes once more, at the next delivery,
    with the same Message-ID and a line saying it is a second sending."""
    path = tmp_path / "wh.duckdb"
    _queue(path, replace(_message(), kind=kind, text="Rappel de fromages"))
    mail_sink.drop_after_receiving = 1

    def send(now: dt.datetime) -> DeliveryReport:
        return deliver(
            email=_email(mail_sink.port),
            secrets=Secrets(),
            now=now,
            language=language,
            open_store=lambda: _store(path),
        )

    dropped = send(NOW)
    assert dropped.sent == [] and dropped.uncertain == ["al-1.opened"]
    assert "SMTPServerDisconnected" in dropped.failed["al-1.opened"]
    assert "delivery uncertain" in dropped.failed["al-1.opened"]
    again = send(NOW + dt.timedelta(seconds=10))  # the next cycle: no back-off for an alert
    assert again.sent == ["al-1.opened"]
    assert send(NOW + dt.timedelta(hours=2)).sent == []
    first, second = mail_sink.messages()
    assert first["Message-ID"] == second["Message-ID"] == "<al-1.opened@vigie>"
    assert line not in _body(first)
    assert _body(second).count(line) == 2  # in the plain text and in the HTML
    assert _undelivered(path) == []


def test_an_alert_is_never_sent_a_third_time(tmp_path: Path, mail_sink: MailSink) -> None:
    """The second sending too is received and unanswered: the alert is left uncertain for a
    person (`vigie status` lists it), and no delivery sends it again."""
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    mail_sink.drop_after_receiving = 2
    first = _deliver(path, _email(mail_sink.port))
    second = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(seconds=10))
    assert first.uncertain == second.uncertain == ["al-1.opened"]
    for hours in (1, 5, 24):
        assert (
            _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(hours=hours)).sent == []
        )
    assert len(mail_sink.messages()) == 2
    assert _undelivered(path) == ["al-1.opened"]


@pytest.mark.parametrize("kind", ["digest", "readiness", "watchdog_stopped"])
def test_other_mail_the_server_received_without_answering_is_not_sent_again(
    tmp_path: Path, mail_sink: MailSink, kind: str
) -> None:
    """A digest, a reminder or a notice whose outcome is uncertain is recorded as such (listed
    for a person) and never sent again by itself."""
    path = tmp_path / "wh.duckdb"
    _queue(path, replace(_message(), message_id=f"{kind}.1", kind=kind, critical=False))
    mail_sink.drop_after_receiving = 1
    dropped = _deliver(path, _email(mail_sink.port))
    assert (
        dropped.uncertain == [f"{kind}.1"] and "delivery uncertain" in dropped.failed[f"{kind}.1"]
    )
    for minutes in (2, 10, 120):
        assert (
            _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=minutes)).sent
            == []
        )
    assert len(mail_sink.messages()) == 1
    assert _undelivered(path) == [f"{kind}.1"]


SENDER = """
import json, sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tasks.notify.delivery import deliver
from vigie.settings import Email, Secrets
from warehouse.connection import open_warehouse
from warehouse.store import Store

@contextmanager
def store():
    with open_warehouse(Path(sys.argv[1])) as con:
        yield Store(con)

email = Email(host="127.0.0.1", port=int(sys.argv[2]), sender="vigie@laiterie-boreale.example",
              security="none", timeout_s=30)
report = deliver(email=email, secrets=Secrets(), now=datetime.now(UTC), open_store=store)
print(json.dumps({"sent": report.sent, "failed": report.failed, "uncertain": report.uncertain}))
"""


def _claimed(path: Path) -> bool:
    with open_warehouse(path) as con:
        return bool(
            con.execute("SELECT count(*) FROM outbox WHERE sending_at IS NOT NULL").fetchall()[0][0]
        )


@pytest.mark.parametrize("first_sender", ["process", "thread", "thread-with-a-stale-now"])
def test_a_live_senders_claim_is_left_alone_and_its_refused_alert_arrives_once(
    tmp_path: Path, mail_sink: MailSink, first_sender: str
) -> None:
    """A cycle's sender waits on a slow server that finally answers 451; meanwhile the
    escalation check delivers too and meets its claim. The claim's owner is alive: it is
    left alone (not judged dead, not marked uncertain); once released, the alert is due again
    and arrives once when the server recovers."""
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    mail_sink.answer_after_s = 4
    mail_sink.refuse_with = "451 4.3.0 Mailbox busy, try again later"
    mail_sink.refuse_times = 1
    outcome: dict[str, object] = {}
    if first_sender == "process":
        script = tmp_path / "sender.py"
        script.write_text(SENDER, encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, str(script), str(path), str(mail_sink.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    else:
        stale = dt.timedelta(minutes=10 if first_sender.endswith("stale-now") else 0)

        def cycle_sender() -> None:
            report = deliver(
                email=_email(mail_sink.port, timeout_s=30),
                secrets=Secrets(),
                # A flow passes the time it started: its claim is still dated by the clock.
                now=dt.datetime.now(dt.UTC) - stale,
                open_store=lambda: _store(path),
            )
            outcome.update(failed=report.failed, uncertain=report.uncertain)

        thread = threading.Thread(target=cycle_sender)
        thread.start()
    deadline = time.monotonic() + 90
    while not _claimed(path):
        assert time.monotonic() < deadline, "the first sender never claimed the alert"
        time.sleep(0.05)
    met = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    assert met.uncertain == [] and met.sent == [] and met.failed == {}
    if first_sender == "process":
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        outcome = json.loads(out)
    else:
        thread.join(timeout=120)
    assert "SMTP 451" in outcome["failed"]["al-1.opened"]  # type: ignore[index]
    assert outcome["uncertain"] == []
    mail_sink.answer_after_s = 0
    recovered = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    again = _deliver(path, _email(mail_sink.port), now=dt.datetime.now(dt.UTC))
    assert recovered.sent == ["al-1.opened"] and again.sent == []
    [received] = mail_sink.messages()
    assert FR_LINE not in _body(received)  # refused, not uncertain: a first sending
    assert _undelivered(path) == []


def test_a_claim_is_judged_dead_only_once_its_lease_is_over(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    """A claim held by a sender on another machine (its process cannot be checked) stands
    until its lease ends; then the server may have the message: the alert goes once more as
    a second sending, the digest is left uncertain."""
    path = tmp_path / "wh.duckdb"
    digest = replace(_message(2), message_id="digest.1", kind="digest", critical=False)
    _queue(path, _message(), digest)
    with open_warehouse(path) as con:
        store = Store(con)
        for message_id in ("al-1.opened", "digest.1"):
            claimed = store.claim(
                message_id, "elsewhere.example:4242:abc", NOW, dt.timedelta(minutes=5)
            )
            assert claimed == 0
    during = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=4))
    assert during.uncertain == [] and during.sent == [] and mail_sink.messages() == []
    after = _deliver(path, _email(mail_sink.port), now=NOW + dt.timedelta(minutes=6))
    assert after.uncertain == ["al-1.opened", "digest.1"]
    assert after.sent == ["al-1.opened"]
    [received] = mail_sink.messages()
    assert FR_LINE in _body(received)
    assert _undelivered(path) == ["digest.1"]


def test_a_sender_releases_only_its_own_claim(tmp_path: Path) -> None:
    """A sender whose server is down records the failure of what it read as due, but never
    releases a claim another sender holds meanwhile (that would let a third send it again)."""
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    with open_warehouse(path) as con:
        store = Store(con)
        store.claim("al-1.opened", "elsewhere.example:4242:abc", NOW, dt.timedelta(minutes=5))
        store.release_claim("al-1.opened", None, "SMTP connection or login failed", NOW, None)
        store.release_claim("al-1.opened", "here:1:other", "SMTP 451", NOW, None)
        [(owner, sending_at, attempts)] = con.execute(
            "SELECT claim_owner, sending_at, attempts FROM outbox"
        ).fetchall()
    assert owner == "elsewhere.example:4242:abc" and sending_at is not None and attempts == 0


def test_an_alert_held_by_an_outage_goes_at_the_first_delivery_once_the_server_answers(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    """Alerts and escalations are tried at every delivery (each cycle, each escalation check),
    however many attempts the outage took: no back-off, never given up; a digest keeps its
    back-off."""
    path = tmp_path / "wh.duckdb"
    digest = replace(_message(2), message_id="digest.1", kind="digest", critical=False)
    escalation = replace(_message(3), message_id="al-3.escalation.L2", kind="escalation")
    _queue(path, _message(), escalation, digest)
    down = _email(free_port())
    at = NOW
    for _ in range(MAX_ATTEMPTS + 2):  # an outage of an hour, a delivery every 5 minutes
        report = _deliver(path, down, now=at)
        assert {"al-1.opened", "al-3.escalation.L2"} <= set(report.failed)
        at += dt.timedelta(minutes=5)
    back = _deliver(path, _email(mail_sink.port), now=at)
    assert back.sent == ["al-1.opened", "al-3.escalation.L2"]  # the digest still backs off
    with open_warehouse(path) as con:
        [(not_before,)] = con.execute(
            "SELECT not_before FROM outbox WHERE message_id = 'digest.1'"
        ).fetchall()
    assert not_before > at
    assert _deliver(path, _email(mail_sink.port), now=not_before).sent == ["digest.1"]
    assert len(mail_sink.messages()) == 3


def _smtp_dribbles_its_answer(conn: socket.socket) -> None:
    """An SMTP server that takes the whole message, then answers one byte every 0.3 s: each
    read arrives within the client's timeout, and the answer never ends."""
    conn.sendall(b"220 slow.example ESMTP\r\n")
    reader = conn.makefile("rb")
    while line := reader.readline():
        command = line[:4].upper()
        if command == b"DATA":
            conn.sendall(b"354 go ahead\r\n")
            while reader.readline() not in (b".\r\n", b""):
                pass
            for _ in range(200):
                conn.sendall(b"2")
                time.sleep(0.3)
            return
        conn.sendall(b"250 slow.example\r\n")


def test_a_conversation_is_cut_at_its_limit_so_a_live_sender_never_outlives_its_lease(
    tmp_path: Path,
) -> None:
    """A server that dribbles its answer would hold a sender for ever (each byte resets the
    timeout): the conversation is cut at its limit, well inside the claim's lease, and the
    outcome is uncertain (the server has the whole message)."""
    path = tmp_path / "wh.duckdb"
    _queue(path, replace(_message(), message_id="digest.1", kind="digest", critical=False))
    with hostile_server(_smtp_dribbles_its_answer) as url:
        email = _email(int(url.split(":")[2].split("/")[0]), timeout_s=1)
        started = time.monotonic()
        report = _deliver(path, email)
        took = time.monotonic() - started
    limit = conversation_limit(email, 2)
    assert limit == 6
    assert took < limit + 10, took
    assert report.uncertain == ["digest.1"] and "delivery uncertain" in report.failed["digest.1"]
    assert claim_lease(email, 2).total_seconds() > took + 60


def test_vigie_status_and_outbox_list_show_what_is_uncertain_and_what_goes_again(
    write_config: ConfigWriter, mail_sink: MailSink, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a server received an alert and a digest without answering: the digest is listed
    as uncertain, with the reason, by `vigie status` and `vigie outbox list`; the alert as due
    for its second sending."""
    feed = {"name": "Le Quotidien", "kind": "rss", "url": "http://127.0.0.1:9/feed.xml"}
    config = write_config(sources=[feed], smtp_port=mail_sink.port)
    path = config.parent / "wh" / "vigie.duckdb"
    digest = replace(_message(2), message_id="digest.1", kind="digest", critical=False)
    _queue(path, digest)
    mail_sink.drop_after_receiving = 1
    assert _deliver(path, _email(mail_sink.port)).uncertain == ["digest.1"]
    _queue(path, _message())
    mail_sink.drop_after_receiving = 1
    assert _deliver(path, _email(mail_sink.port)).uncertain == ["al-1.opened"]
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    status = capsys.readouterr().out
    [digest_line] = [line for line in status.splitlines() if "digest.1" in line]
    assert "UNCERTAIN, not sent again: SMTPServerDisconnected" in digest_line
    assert "al-1.opened" not in status  # due again: not a person's business
    assert main(["--config", str(config), "outbox", "list"]) == 0
    listed = capsys.readouterr().out
    assert "digest.1 [digest]" in listed and "UNCERTAIN (SMTPServerDisconnected" in listed
    assert "al-1.opened [alert]" in listed and "second sending due" in listed
