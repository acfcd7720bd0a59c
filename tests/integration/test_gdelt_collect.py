"""The gdelt kind against the real FeedServer on 127.0.0.1, serving replies written by hand in
the DOC 2.0 API's shape (tests/fixtures/sources/gdelt/): articles and the volume timeline
through a real collection into a real DuckDB over two cycles, the timeline stored idempotently,
a malformed reply recorded as a source failure, and the outside check `vigie status` prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.main import main
from cli.watch import outside_volume_lines
from tasks.collect.fetch import collect_matching, fetch_any_source, fetch_sources
from tests.configs import WATCH_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import VolumeSignal
from vigie.settings import Collection, Settings
from warehouse.connection import open_warehouse
from warehouse.store import LoadResult, Store

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources" / "gdelt"
DOC = "/api/v2/doc/doc"
JSON = "application/json; charset=utf-8"
FAST = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=5, retries=0)
GDELT_TOML = (
    WATCH_TOML
    + """
[[sources]]
name = "GDELT"
kind = "gdelt"
url = "{base}"

[email]
sender = "vigie@laiterie-boreale.example"

[collection]
connect_timeout_s = 1
read_timeout_s = 2
deadline_s = 10
retries = 0
"""
)
QUERY = '("laiterie boréale" OR boréale)'  # as GDELT reads it
SEARCH = '"laiterie boréale" OR boréale'  # as derived from the watch query


def _serve(server: FeedServer, name: str, **query: str) -> None:
    server.set(DOC, (FIXTURES / name).read_bytes(), content_type=JSON, query=query)


def _settings(server: FeedServer, tmp_path: Path) -> Settings:
    return settings_from(tmp_path, GDELT_TOML.replace("{base}", server.url("")))


def _cycle(settings: Settings, now: datetime, cycle_id: str) -> LoadResult:
    """One collection as the watch cycle runs it: fetch, parse and match, load."""
    path = settings.warehouse_path
    with open_warehouse(path) as con:
        states = Store(con).source_states()
    fetched = fetch_sources(settings.sources, states, collection=settings.collection)
    collected = collect_matching(
        settings.sources, fetched, settings.watch, collected_at=now, max_entries=1000
    )
    with open_warehouse(path) as con:
        return Store(con).load_cycle(
            cycle_id, settings.sources, collected.outcomes, collected.matched, [], now
        )


def test_one_fetch_reads_the_articles_then_the_timeline(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    _serve(feed_server, "artlist.json", mode="artlist")
    _serve(feed_server, "timeline.json", mode="timelinevolraw")
    (source,) = _settings(feed_server, tmp_path).sources
    result = fetch_any_source(source, None, collection=FAST)
    assert result.status == "ok" and result.error is None
    assert result.entries is not None and len(result.entries) == 4
    assert len(result.volumes) == 96 and result.pages == 2
    assert result.marker == str(int(datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()))
    asked = feed_server.query_params(DOC)
    assert [(q["mode"], q["query"]) for q in asked] == [
        ("artlist", QUERY),
        ("timelinevolraw", QUERY),
    ]


def test_articles_and_timeline_into_duckdb_over_two_cycles(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = _settings(feed_server, tmp_path)
    path = settings.warehouse_path
    _serve(feed_server, "artlist.json", mode="artlist")
    _serve(feed_server, "timeline.json", mode="timelinevolraw")
    first = _cycle(settings, datetime(2026, 11, 26, 10, 20, tzinfo=UTC), "c1")
    # The recruitment article is left out by the watch query's NOT.
    assert first.new_by_source == {"GDELT": 3}
    with open_warehouse(path) as con:
        ((volumes, total),) = con.execute(
            "SELECT count(*), sum(value) FROM outside_volumes WHERE source = 'GDELT' "
            "AND topic_or_query = ?",
            [SEARCH],
        ).fetchall()
        ((marker,),) = con.execute("SELECT marker FROM sources WHERE name = 'GDELT'").fetchall()
        authors = {row[0] for row in con.execute("SELECT author FROM mentions").fetchall()}
    assert (volumes, total) == (96, 47)
    assert marker == str(int(datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()))
    assert authors == {"lapresse.ca", "ledevoir.com", "globalnews.ca"}

    # An hour later: articles since the marker's second, and the timeline a bucket further.
    feed_server.requests.clear()
    _serve(feed_server, "artlist-new.json", mode="artlist", startdatetime="20261126101500")
    _serve(feed_server, "timeline-new.json", mode="timelinevolraw")
    second = _cycle(settings, datetime(2026, 11, 26, 10, 40, tzinfo=UTC), "c2")
    assert second.new_by_source == {"GDELT": 1}  # the article of the marker's second is known
    assert feed_server.query_params(DOC)[0]["startdatetime"] == "20261126101500"

    def stored() -> list[tuple[datetime, int]]:
        with open_warehouse(path) as con:
            return [
                (when.astimezone(UTC), value)
                for when, value in con.execute(
                    "SELECT bucket_start, value FROM outside_volumes ORDER BY bucket_start"
                ).fetchall()
            ]

    after_second = stored()
    assert len(after_second) == 97  # 95 buckets fetched again, one new
    # The bucket that was still filling holds its newer count.
    assert dict(after_second)[datetime(2026, 11, 26, 10, 15, tzinfo=UTC)] == 5
    # The same replies again change nothing.
    _cycle(settings, datetime(2026, 11, 26, 10, 40, tzinfo=UTC), "c2")
    assert stored() == after_second
    with open_warehouse(path) as con:
        ((mentions,),) = con.execute("SELECT count(*) FROM mentions").fetchall()
    assert mentions == 4


def test_a_malformed_reply_is_a_recorded_source_failure(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = _settings(feed_server, tmp_path)
    # GDELT answers a query it cannot run with a line of text, status 200.
    feed_server.set(
        DOC, (FIXTURES / "too-short.txt").read_bytes(), content_type="text/html; charset=utf-8"
    )
    loaded = _cycle(settings, datetime(2026, 11, 26, 10, 20, tzinfo=UTC), "c1")
    assert loaded.new_mentions == 0
    # The timeline is not asked for when the articles could not be read.
    assert [q["mode"] for q in feed_server.query_params(DOC)] == ["artlist"]
    with open_warehouse(path := settings.warehouse_path) as con:
        runs = con.execute("SELECT status, error FROM source_runs").fetchall()
        ((failures, volumes),) = con.execute(
            "SELECT consecutive_failures, (SELECT count(*) FROM outside_volumes) FROM sources"
        ).fetchall()
    assert runs == [("error", "not JSON")]
    assert (failures, volumes) == (1, 0)
    assert path.exists()


def test_status_compares_the_last_hour_with_the_day_before(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = _settings(feed_server, tmp_path)
    _serve(feed_server, "artlist.json", mode="artlist")
    _serve(feed_server, "timeline.json", mode="timelinevolraw")
    now = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    _cycle(settings, now, "c1")
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        volumes = store.outside_volume(now)
        quiet_day_later = store.outside_volume(now + timedelta(days=3))
    # 09:30 to 10:15: 2 + 3 + 3 + 4; the 23 hours before hold 35 articles.
    assert volumes == [("GDELT", SEARCH, 12, 35 / 23)]
    assert outside_volume_lines(volumes) == [
        f"GDELT (GDELT, {SEARCH}): 12 articles in the last hour vs 1.5/h the day before"
    ]
    assert quiet_day_later == []


def test_vigie_status_says_what_gdelt_counted_beside_an_open_alert(
    feed_server: FeedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(feed_server, tmp_path)
    config = tmp_path / "vigie.toml"
    now = datetime.now(UTC)
    # A timeline ending now: one article every 15 minutes for a day, then 12 in the last hour.
    points = [
        {"date": f"{now - timedelta(hours=1, minutes=15 * k):%Y%m%dT%H%M%SZ}", "value": 1}
        for k in range(1, 120)
    ]
    points.append({"date": f"{now - timedelta(minutes=20):%Y%m%dT%H%M%SZ}", "value": 12})
    timeline = {"timeline": [{"series": "Article Count", "data": points}]}
    _serve(feed_server, "artlist.json", mode="artlist")
    feed_server.set(DOC, json.dumps(timeline), content_type=JSON, query={"mode": "timelinevolraw"})
    _cycle(settings, now, "c1")
    assert main(["--config", str(config), "status"]) == 0
    assert "articles in the last hour" not in capsys.readouterr().out  # no open alert

    signal = VolumeSignal("marque", now - timedelta(hours=1), now, 12, 2.0, 1.0, 0.9, 8.0, True)
    with open_warehouse(settings.warehouse_path) as con:
        Store(con).open_alert("al-1", signal, level="alerte", reason="r", now=now, messages=[])
    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    expected = f"GDELT (GDELT, {SEARCH}): 12 articles in the last hour vs 4.0/h the day before"
    assert f"    {expected}\n" in out
    assert out.index("al-1 [alerte] marque") < out.index(expected)


def test_a_failed_timeline_keeps_the_articles_and_moves_the_marker(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    _serve(feed_server, "artlist.json", mode="artlist")
    feed_server.set(DOC, "busy", status=503, query={"mode": "timelinevolraw"})
    (source,) = _settings(feed_server, tmp_path).sources
    result = fetch_any_source(source, None, collection=FAST)
    assert result.status == "ok" and result.error == "HTTP 503 Service Unavailable"
    assert result.entries is not None and len(result.entries) == 4 and result.volumes == ()
    # The articles were all read: the next cycle starts after them.
    assert result.marker == str(int(datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()))
