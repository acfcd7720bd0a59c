"""Adaptive polling through the watch cycle flow (a real temporary Prefect server, a feed server
on 127.0.0.1): a quiet source waits its turn, and incident mode's cycles poll it sooner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer, MailSink

pytestmark = pytest.mark.prefect

T0 = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)


def _daily_rss(newest: datetime) -> str:
    items = "".join(
        f"<item><title>Laiterie Boréale, chronique {i}</title>"
        f"<link>https://hebdo.example/{i}</link>"
        f"<pubDate>{format_datetime(newest - timedelta(days=i))}</pubDate></item>"
        for i in range(10)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>H</title>{items}</channel></rss>'
    )


def test_a_quiet_source_waits_its_turn_and_incident_mode_polls_it_sooner(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    url = feed_server.set("/hebdo.xml", _daily_rss(T0 - timedelta(days=1)))
    config = write_config(
        sources=[{"name": "Hebdo", "url": url, "tier": 3}],
        smtp_port=mail_sink.port,
        adaptive_polling=True,  # the default of a real configuration
    )
    first = watch_cycle(str(config), now=T0)
    assert first["sources_ok"] == 1
    # A source publishing once a day waits the 60-minute maximum after a fetch.
    second = watch_cycle(str(config), now=T0 + timedelta(minutes=10))
    assert second["sources_ok"] == second["sources_not_modified"] == 0
    assert second["sources_skipped"]["Hebdo"].startswith("adaptive polling: next poll in")
    # Incident mode's cycles (they pass their extra watches) poll it every 15 minutes at most.
    incident = watch_cycle(str(config), now=T0 + timedelta(minutes=20), extra_watches=[])
    assert incident["sources_skipped"] == {}
    assert incident["sources_not_modified"] == 1
    requests = [path for path, _ in feed_server.requests if path == "/hebdo.xml"]
    assert len(requests) == 2
