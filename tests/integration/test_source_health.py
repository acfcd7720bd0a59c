"""The watch notices its own failures: real feeds on 127.0.0.1, a real DuckDB file, the notices
queued in the outbox once per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tasks.collect import collect_sources, fetch_sources
from tasks.detect import assess_watches
from tasks.health import check_source_health, entry_freshness
from tests.configs import CELL_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import FetchResult, SourceOutcome
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _rss(newest: datetime, count: int = 5, gap: timedelta = timedelta(hours=1)) -> str:
    items = "".join(
        f"<item><title>Laiterie Boréale, nouvelle {k}</title>"
        f"<link>https://quotidien.example/{newest:%Y%m%d%H%M}/{k}</link>"
        f"<pubDate>{format_datetime(newest - gap * k)}</pubDate></item>"
        for k in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Q</title>{items}</channel></rss>'
    )


def _settings(tmp_path: Path, url: str) -> Settings:
    return settings_from(
        tmp_path,
        f"""
[organisation]
name = "Laiterie Boréale"
language = "fr"

[warehouse]
path = "{tmp_path / "wh.duckdb"}"

[[watch]]
name = "marque"
query = 'boréale'

[[sources]]
name = "Le Quotidien"
url = "{url}"

[collection]
connect_timeout_s = 1
read_timeout_s = 1
deadline_s = 3
retries = 0

[email]
sender = "vigie@laiterie-boreale.example"

[[cell.members]]
name = "Odile Opérations"
email = "odile@laiterie-boreale.example"
role = "operator"
level = 3
"""
        + CELL_TOML,
    )


def _cycle(settings: Settings, now: datetime) -> list[str]:
    """Fetch, parse, load and judge health as the watch cycle does (without Prefect)."""
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        states = store.source_states()
        fetched = fetch_sources(settings.sources, states, collection=settings.collection)
        mentions, outcomes = collect_sources(
            settings.sources, fetched, collected_at=now, max_entries=100
        )
        matched = [m for m in mentions]  # every test item names the brand
        store.load_cycle(f"c{now:%H%M%S}", settings.sources, outcomes, matched, [], now)
        return check_source_health(store, settings, entry_freshness(mentions), now=now)


def _notices(settings: Settings) -> list[tuple[str, str, list[str]]]:
    with open_warehouse(settings.warehouse_path) as con:
        rows = con.execute(
            "SELECT kind, subject, recipients FROM outbox WHERE kind = 'source_health' "
            "ORDER BY created_at, message_id"
        ).fetchall()
    return [(kind, subject, list(recipients)) for kind, subject, recipients in rows]


def test_a_failing_source_is_reported_once_then_its_recovery(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))
    settings = _settings(tmp_path, url)
    assert _cycle(settings, START) == []
    feed_server.set("/feed.xml", "boom", status=500)
    changes = [_cycle(settings, START + timedelta(minutes=10 * k)) for k in range(1, 6)]
    assert changes == [[], [], ["Le Quotidien: ok -> failing"], [], []]
    notices = _notices(settings)
    assert len(notices) == 1
    assert notices[0][1] == "[Vigie][SOURCE] Source en panne : Le Quotidien"
    assert notices[0][2] == ["odile@laiterie-boreale.example"]  # the operators, not the cell
    feed_server.set("/feed.xml", _rss(START + timedelta(hours=1)))
    assert _cycle(settings, START + timedelta(hours=1)) == ["Le Quotidien: failing -> ok"]
    assert [n[1] for n in _notices(settings)][
        -1
    ] == "[Vigie][SOURCE] Source rétablie : Le Quotidien"
    with open_warehouse(settings.warehouse_path) as con:
        health = Store(con).source_health()[0]
    assert health[7] == "ok"


def test_an_html_page_instead_of_the_feed_is_reported_at_once(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))
    settings = _settings(tmp_path, url)
    _cycle(settings, START)
    feed_server.set(
        "/feed.xml", "<!DOCTYPE html><html><body>Moved</body></html>", content_type="text/html"
    )
    assert _cycle(settings, START + timedelta(minutes=10)) == ["Le Quotidien: ok -> not_a_feed"]
    assert "ne renvoie plus de flux" in _notices(settings)[0][1]


def test_a_feed_that_stops_publishing_is_reported_as_silent(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))  # hourly entries, newest at START
    settings = _settings(tmp_path, url)
    _cycle(settings, START)
    # The feed keeps answering (304) but nothing new appears for more than a day.
    assert _cycle(settings, START + timedelta(hours=12)) == []
    assert _cycle(settings, START + timedelta(hours=25)) == ["Le Quotidien: ok -> silent"]
    assert _cycle(settings, START + timedelta(hours=26)) == []
    with open_warehouse(settings.warehouse_path) as con:
        health = Store(con).source_health()[0]
    assert health[7] == "silent" and "usually publishes every 60 min" in health[9]


def _run(status: str, at: datetime) -> SourceOutcome:
    fetch = FetchResult("Le Quotidien", "http://127.0.0.1/f", status, at, 0.1)  # type: ignore[arg-type]
    return SourceOutcome(fetch, status)  # type: ignore[arg-type]


def test_detection_reads_collection_coverage_from_source_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/feed.xml")
    runs = [
        ("ok", START - timedelta(minutes=10)),
        ("ok", START + timedelta(hours=1, seconds=30)),
        ("error", START + timedelta(hours=2, seconds=30)),
    ]
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        for index, (status, at) in enumerate(runs):
            store.load_cycle(f"c{index}", settings.sources, [_run(status, at)], [], [], at)
        covered, down = (
            assess_watches(store, ["marque"], settings.detection, moment, sources=["Le Quotidien"])
            for moment in (START + timedelta(hours=1), START + timedelta(hours=3))
        )
    # The cycle of 09:00 fetches at 09:00:30: its window 08:00-09:00 counts as collected.
    assert covered[0].coverage == 1.0
    # The window 10:00-11:00 saw only a failed fetch.
    assert down[0].coverage == 0.0
