"""`vigie digest` as a user runs it (in this process: nothing here needs one of its own): a real
warehouse, a real SMTP server."""

from __future__ import annotations

from tests.commands import vigie_here
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink

SOURCES: list[dict[str, object]] = [
    {"name": "Le Quotidien", "url": "https://quotidien.example/rss.xml", "tier": 1}
]


def test_digest_no_send_queues_once_and_says_so(
    mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = str(write_config(sources=SOURCES, smtp_port=mail_sink.port))
    args = ("--config", config, "digest", "--period", "daily", "--end", "2026-11-25T07:00-05:00")
    first = vigie_here(*args, "--no-send")
    again = vigie_here(*args, "--no-send")
    assert first.returncode == 0, first.stderr
    assert "Digest daily from 2026-11-24 12:00 to 2026-11-25 12:00 UTC: mentions marque 0" in (
        first.stdout
    )
    assert (
        "digest.daily.20261125T120000Z: queued: [Vigie][RÉSUMÉ] Laiterie Boréale — "
        "25 novembre 2026 (to 3 recipients, 0 charts)"
    ) in first.stdout
    assert "Not sent (--no-send)" in first.stdout
    assert "already in the outbox, not queued again" in again.stdout
    assert mail_sink.messages() == []


def test_digest_sends_the_outbox(mail_sink: MailSink, write_config: ConfigWriter) -> None:
    config = str(write_config(sources=SOURCES, smtp_port=mail_sink.port, language="en"))
    result = vigie_here(
        "--config", config, "digest", "--period", "weekly", "--end", "2026-11-25T12:00Z"
    )
    assert result.returncode == 0, result.stderr
    assert "Outbox: 1 sent, 0 failed" in result.stdout
    (received,) = mail_sink.messages()
    assert received["Subject"] == (
        "[Vigie][WEEKLY DIGEST] Laiterie Boréale — week of 18–25 November 2026"
    )
