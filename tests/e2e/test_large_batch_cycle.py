"""A first poll large enough to be parsed by worker processes, through the watch cycle flow (the
session's Prefect server, feeds on 127.0.0.1): Great Expectations and the models are then loaded
after the workers exit (issue 23's memory), and the mentions come out validated and scored as
when the same batch is parsed in the cycle's own process."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tasks.collect.normalise import parses_in_workers
from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer, MailSink
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

FEEDS = 9
ITEMS = 60
WORDS = (
    "La Laiterie Boréale rappelle un lot de fromage après des plaintes de clients malades. "
    "Les consommateurs sont en colère et dénoncent un scandale sanitaire inacceptable. "
)


def _feed(number: int, now: datetime) -> str:
    items = "".join(
        f"<item><title>Laiterie Boréale : rappel {number}-{n}</title>"
        f"<link>https://presse{number}.example/rappel/{n}</link>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=n))}</pubDate>"
        f"<description>{html.escape(WORDS * 120)}</description></item>"
        for n in range(ITEMS)
    )
    channel = f"<channel><title>Presse {number}</title>{items}</channel>"
    return f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0">{channel}</rss>'


def _mentions(path: Path) -> list[tuple[object, ...]]:
    with open_warehouse(path) as con:
        return con.execute(
            "SELECT url, language, sign(sentiment) FROM mentions ORDER BY url"
        ).fetchall()


def test_a_batch_parsed_by_workers_is_validated_and_scored_as_one_parsed_in_process(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    now = datetime.now(UTC)
    bodies = [_feed(number, now) for number in range(FEEDS)]
    size = sum(len(body.encode()) for body in bodies)
    # Large enough for worker processes at 2, not at 1: the two paths of the cycle.
    assert parses_in_workers(size, 2) and not parses_in_workers(size, 1)
    sources = [
        {"name": f"Presse {n}", "url": feed_server.set(f"/presse{n}.xml", body), "tier": 2}
        for n, body in enumerate(bodies)
    ]
    in_workers = write_config(
        sources=sources, smtp_port=mail_sink.port, extra="parse_processes = 2"
    )
    in_process = in_workers.with_name("in-process.toml")
    in_process.write_text(
        in_workers.read_text(encoding="utf-8")
        .replace("parse_processes = 2", "parse_processes = 1")
        .replace("wh/vigie.duckdb", "wh-in-process/vigie.duckdb"),
        encoding="utf-8",
    )

    summaries = [watch_cycle(str(config)) for config in (in_workers, in_process)]

    for summary in summaries:
        assert summary["sources_ok"] == FEEDS
        assert summary["new_mentions"] == FEEDS * ITEMS
        assert summary["quarantined"] == 0
    by_workers = _mentions(in_workers.parent / "wh" / "vigie.duckdb")
    assert by_workers == _mentions(in_workers.parent / "wh-in-process" / "vigie.duckdb")
    # Every mention has its language and a negative score: the models did run.
    assert {(language, sign) for _, language, sign in by_workers} == {("fr", -1.0)}
