"""Adaptive polling against a real HTTP server on 127.0.0.1, cycle after cycle on an injected
clock, through a real warehouse: what each source publishes decides how often it is fetched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tasks.collect.fetch import collect_matching, fetch_sources
from tasks.collect.schedule import (
    due_for_polling,
    fetch_states,
    next_polls,
    poll_policy,
    screen_fetched,
)
from tests.configs import WATCH_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

T0 = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)
CYCLE = timedelta(minutes=10)


def _rss(newest: datetime, gap: timedelta, count: int = 20) -> str:
    items = "".join(
        f"<item><title>Laiterie Boréale, nouvelle {newest - i * gap:%Y%m%d%H%M}</title>"
        f"<link>https://media.example/{(newest - i * gap):%Y%m%d%H%M}</link>"
        f"<pubDate>{format_datetime(newest - i * gap)}</pubDate></item>"
        for i in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    )


def _settings(tmp_path: Path, server: FeedServer) -> Settings:
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\nurl = "{server.url(f"/{name}.xml")}"\n'
        for name in ("busy", "quiet", "lying")
    )
    return settings_from(
        tmp_path,
        WATCH_TOML
        + sources
        + '\n[email]\nsender = "vigie@laiterie-boreale.example"\n'
        + "\n[collection]\nadaptive_polling = true\nretries = 0\nparse_processes = 1\n",
    )


def _cycle(settings: Settings, now: datetime) -> dict[str, tuple[str, int | None]]:
    """One cycle as the watch cycle runs it (without Prefect): plan, fetch, screen, parse, load.

    Returns each fetched source's recorded status and HTTP status.
    """
    policy = poll_policy(settings)
    with open_warehouse(settings.warehouse_path) as con:
        states = Store(con).source_states()
    due, _ = due_for_polling(settings.sources, states, now, policy)
    fetched = fetch_sources(
        due, fetch_states(due, states, now, policy), collection=settings.collection
    )
    fetched = screen_fetched(fetched, states, now, policy)
    collected = collect_matching(
        settings.sources, fetched, settings.watch, collected_at=now, max_entries=100
    )
    polls = next_polls(
        settings.sources, collected.outcomes, collected.freshness, states, now, policy
    )
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        store.load_cycle(
            f"c{now:%d%H%M}",
            settings.sources,
            collected.outcomes,
            collected.matched,
            [],
            now,
            polls=polls,
        )
        store.record_freshness(list(collected.freshness.values()))
    return {o.fetch.source: (o.status, o.fetch.http_status) for o in collected.outcomes}


def test_a_quiet_feed_is_polled_less_a_busy_one_every_cycle_and_lying_validators_are_caught(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, feed_server)
    # Quiet: one entry a day, the newest two days old, honest validators (a 304 when unchanged).
    feed_server.set("/quiet.xml", _rss(T0 - timedelta(days=2), timedelta(days=1)))
    # Lying: one entry an hour, never changing, but a new ETag on every answer and never a 304.
    feed_server.set(
        "/lying.xml", _rss(T0 - timedelta(minutes=30), timedelta(hours=1)), volatile_validators=True
    )
    cycles = 36  # six hours
    seen: dict[str, list[tuple[int, str, int | None]]] = {"busy": [], "quiet": [], "lying": []}
    for number in range(cycles):
        now = T0 + number * CYCLE
        # Busy: a new entry every cycle.
        feed_server.set("/busy.xml", _rss(now - timedelta(minutes=1), CYCLE))
        for name, (status, http_status) in _cycle(settings, now).items():
            seen[name].append((number, status, http_status))

    assert [n for n, _, _ in seen["busy"]] == list(range(cycles))  # at the minimum: every cycle
    assert all(status == "ok" for _, status, _ in seen["busy"])
    # The quiet feed: first poll, then at the maximum, an hour.
    assert [n for n, _, _ in seen["quiet"]] == [0, 6, 12, 18, 24, 30]
    assert [status for _, status, _ in seen["quiet"]] == ["ok"] + ["not_modified"] * 5
    # The lying server always answered 200 with a body; past the first, each was the same bytes.
    assert seen["lying"][0][1:] == ("ok", 200)
    assert len(seen["lying"]) >= 2
    assert all(entry[1:] == ("not_modified", 200) for entry in seen["lying"][1:])
    assert len(seen["lying"]) < cycles / 3  # hourly entries, nothing new: polled less and less
    lying_answers = [p for p, _ in feed_server.requests if p == "/lying.xml"]
    assert len(lying_answers) == len(seen["lying"])

    with open_warehouse(settings.warehouse_path) as con:
        rows = dict(
            con.execute(
                "SELECT source, count(*) FROM source_runs WHERE status = 'not_modified' "
                "AND http_status = 200 GROUP BY source"
            ).fetchall()
        )
        quiet_polls, next_at = con.execute(
            "SELECT quiet_polls, next_poll_at FROM sources WHERE name = 'lying'"
        ).fetchone() or (0, None)
    assert rows == {"lying": len(seen["lying"]) - 1}
    assert quiet_polls == len(seen["lying"]) - 1
    assert next_at is not None and next_at > T0 + (cycles - 1) * CYCLE


def test_a_server_asking_to_wait_is_not_polled_before_it_said(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A 429 with `Retry-After: 2400`: the source waits 40 minutes (within the hour of the
    maximum), then is polled again."""
    settings = _settings(tmp_path, feed_server)
    feed_server.set("/busy.xml", "slow down", status=429, headers={"Retry-After": "2400"})
    feed_server.set("/quiet.xml", _rss(T0, CYCLE))
    feed_server.set("/lying.xml", _rss(T0, CYCLE))
    polled = []
    for number in range(9):
        now = T0 + number * CYCLE
        if "busy" in _cycle(settings, now):
            polled.append(number)
    assert polled == [0, 4, 8]  # each time, the 40 minutes it asked for
