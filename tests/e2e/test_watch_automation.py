"""The dead man's switch as a Prefect automation, on a real `prefect server start` (the session's
`prefect_server`) and a real SMTP server asking for STARTTLS and a password: real cycles
(`vigie run --once`) run, then stop, and the email comes from the Prefect server itself, with no
worker or serve process alive. `health.watchdog_minutes = 1`, the smallest window; the waits are
hang guards, nothing asserts a duration."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from prefect.events.schemas.events import ReceivedEvent

from tasks.publish.events import watch_key
from tests.commands import vigie
from tests.conftest import ConfigWriter
from tests.e2e.prefect_server import PrefectServer, running_prefect_server
from tests.e2e.served import prefect_client
from vigie.localservers import FeedServer, MailSink
from vigie.settings import load_settings

SECRET = "pw-Automation-9x!-vigie-secret"
SENDER = "vigie@laiterie-boreale.example"
OPERATOR = "nadia.ouellet@laiterie-boreale.example"
SUBJECT = "[Vigie][VEILLE ARRÊTÉE] Aucun cycle de veille depuis plus de 1 min"
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Le Quotidien</title>
<item><title>Laiterie Boréale : nouvelle usine</title><link>https://example.org/a</link>
<guid>a</guid><pubDate>{date}</pubDate></item></channel></rss>"""
EXTRA = f"""
[[cell.members]]
name = "Nadia Ouellet"
email = "{OPERATOR}"
role = "operator"
level = 1

[health]
watchdog_minutes = 1
"""
# One window (60 s) plus the server's proactive evaluation (every 5 s) and its action, with room
# for a loaded machine.
FIRE_WAIT_S = 240


@pytest.fixture
def prefect_server() -> Iterator[PrefectServer]:
    """A server of its own, whose environment holds the SMTP password: the block names the
    variable, the server reads it when it sends."""
    with running_prefect_server(server_env={"VIGIE_SMTP_PASSWORD": SECRET}) as server:
        yield server


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    ok = isinstance(data, LoginPassword) and data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


def _vigie(server: PrefectServer, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return vigie(
        "--config",
        str(config),
        *args,
        env={**server.env, "VIGIE_SMTP_PASSWORD": SECRET},
        cwd=config.parent,
        timeout=300,
    )


def _cycle(server: PrefectServer, config: Path) -> None:
    result = _vigie(server, config, "run", "--once")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def _stopped(mail: MailSink) -> list[EmailMessage]:
    return [m for m in mail.messages() if str(m["Subject"]) == SUBJECT]


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return condition()


def _watched(server: PrefectServer, config: Path) -> list[ReceivedEvent]:
    """The `vigie.watch.watched` events of this watch that the server stored, oldest first."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOrder,
        EventResourceFilter,
    )

    resource = f"vigie.watch.{watch_key(load_settings(config))}"
    event_filter = EventFilter(
        event=EventNameFilter(name=["vigie.watch.watched"]),
        resource=EventResourceFilter(id=[resource]),
        order=EventOrder.ASC,
    )
    with prefect_client(server) as client:
        return list(client.read_events(filter=event_filter, limit=50).events)


@pytest.mark.slow  # waits on the Prefect server's own clock: two windows of its trigger
def test_the_prefect_server_tells_of_a_stopped_watch_once(
    prefect_server: PrefectServer,
    feed_server: FeedServer,
    write_config: ConfigWriter,
    tmp_path: Path,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    url = feed_server.set("/rss.xml", FEED.format(date="Thu, 26 Nov 2026 08:00:00 GMT"))
    source = {"name": "Le Quotidien", "url": url}
    with MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as mail:
        config = write_config(sources=[source], smtp_port=mail.port, extra=EXTRA)
        text = config.read_text(encoding="utf-8").replace(
            'security = "none"',
            f'security = "starttls"\nusername = "{SENDER}"\nca_file = "{cert}"',
        )
        config.write_text(text, encoding="utf-8")

        created = _vigie(prefect_server, config, "watchdog", "--automation")
        assert created.returncode == 0, created.stderr[-3000:]
        assert " created: the Prefect server emails " + OPERATOR in created.stdout
        name = created.stdout.split("Watchdog automation ")[1].split()[0]
        again = _vigie(prefect_server, config, "watchdog", "--automation")
        assert f"Watchdog automation {name} unchanged" in again.stdout, again.stderr[-3000:]
        with prefect_client(prefect_server) as client:
            [automation] = client.read_automations_by_name(name)
        assert automation.trigger.within.total_seconds() == 60  # type: ignore[union-attr]

        # Cycles run, a source answering: each tells Prefect it watched; no notice.
        _cycle(prefect_server, config)
        _cycle(prefect_server, config)
        assert _stopped(mail) == []
        # A cycle where every source fails does not count as watching.
        feed_server.set("/rss.xml", "down", status=500, content_type="text/plain")
        _cycle(prefect_server, config)
        # The server's event persister writes in batches: read until both are there.
        assert _wait_for(lambda: len(_watched(prefect_server, config)) >= 2, 60)
        watched = _watched(prefect_server, config)
        assert len(watched) == 2, watched

        # The cycles stop: no process of Vigie runs now. The Prefect server emails, once.
        assert _wait_for(lambda: bool(_stopped(mail)), FIRE_WAIT_S), mail.messages()
        [notice] = _stopped(mail)
        assert OPERATOR in str(notice["To"])
        body = notice.get_body(preferencelist=("plain",))
        assert body is not None
        content = body.get_content()
        last_cycle = watched[-1].payload["cycle_id"]
        assert f"Dernier cycle qui a veillé: {last_cycle}" in content, content
        assert "automatisation Prefect" in content

        # Still stopped, nothing sent twice. Without a bucket per watch (`for_each`), Prefect
        # opens a new window at its next evaluation, a window after the notice, and fires again
        # at its end: 90 s covers that window (60 s), the evaluation period (5 s) and the send.
        time.sleep(90)
        assert len(_stopped(mail)) == 1

        # The watch is back: Prefect sends nothing (an event trigger has no resolved state);
        # the automation is armed again, and a second stop is told once more.
        feed_server.set("/rss.xml", FEED.format(date="Thu, 26 Nov 2026 09:00:00 GMT"))
        _cycle(prefect_server, config)
        assert len(_stopped(mail)) == 1
        assert _wait_for(lambda: len(_stopped(mail)) == 2, FIRE_WAIT_S), mail.messages()
        # Figures for the record (not asserted): from the last event of a cycle to the notice.
        watched = _watched(prefect_server, config)
        for event, notice in zip((watched[1], watched[-1]), _stopped(mail), strict=True):
            sent = parsedate_to_datetime(str(notice["Date"]))
            print(f"notice {(sent - event.occurred).total_seconds():.1f} s after the last cycle")

        # A new window updates the automation in place: still one.
        config.write_text(text.replace("watchdog_minutes = 1", "watchdog_minutes = 2"), "utf-8")
        updated = _vigie(prefect_server, config, "watchdog", "--automation")
        assert f"Watchdog automation {name} updated" in updated.stdout, updated.stderr[-3000:]
        with prefect_client(prefect_server) as client:
            [automation] = client.read_automations_by_name(name)
        assert automation.trigger.within.total_seconds() == 120  # type: ignore[union-attr]

    # The password is in the server's environment only: not in its files, and no block
    # document gives it to a client (include_secrets).
    with prefect_client(prefect_server) as client:
        answer = client.request("POST", "/block_documents/filter", json={"include_secrets": True})
    assert answer.status_code == 200 and "vigie-email" in answer.text
    assert SECRET not in answer.text
    forms = [SECRET.encode()]
    leaks = [
        str(path)
        for path in prefect_server.home.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]
    assert leaks == []
    assert SECRET not in created.stdout + created.stderr + again.stdout + again.stderr
