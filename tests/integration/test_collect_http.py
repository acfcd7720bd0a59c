"""Collection against a real HTTP server on 127.0.0.1: conditional GET, failures recorded."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.collect.fetch import STEP_MARGIN_S, collect_sources, fetch_source, fetch_sources
from vigie.errors import ConfigError
from vigie.localservers import FeedServer, free_port
from vigie.models import SourceState
from vigie.settings import Collection, Source
from warehouse.connection import open_warehouse
from warehouse.store import Store

RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
<item><title>Rappel : la Laiterie Boréale retire un fromage</title>
<link>https://quotidien.example/a/1?utm_source=rss</link>
<pubDate>Wed, 25 Nov 2026 14:00:00 +0000</pubDate>
<description>&lt;b&gt;Rappel&lt;/b&gt;</description></item>
<item><title>Météo</title><link>https://quotidien.example/a/2</link></item>
</channel></rss>"""

FAST = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=5, retries=1)


def _source(url: str, name: str = "Le Quotidien") -> Source:
    return Source(name=name, url=url, platform="news", tier=1)


def test_fetch_returns_body_and_validators(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", RSS)
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "ok"
    assert result.http_status == 200
    assert result.body is not None and b"Laiterie" in result.body
    assert result.etag and result.last_modified


def test_unchanged_feed_is_not_downloaded_again(feed_server: FeedServer) -> None:
    """A second fetch with the kept ETag and Last-Modified gets a 304 and no body."""
    url = feed_server.set("/feed.xml", RSS)
    first = fetch_source(_source(url), None, collection=FAST)
    state = SourceState("Le Quotidien", first.etag, first.last_modified)
    second = fetch_source(_source(url), state, collection=FAST)
    assert second.status == "not_modified"
    assert second.body is None
    headers = feed_server.requests[-1][1]
    assert headers["If-None-Match"] == first.etag
    assert headers["If-Modified-Since"] == first.last_modified


def test_changed_feed_is_downloaded_again(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", RSS)
    first = fetch_source(_source(url), None, collection=FAST)
    feed_server.set("/feed.xml", RSS.replace("Météo", "Sports"))
    state = SourceState("Le Quotidien", first.etag, first.last_modified)
    second = fetch_source(_source(url), state, collection=FAST)
    assert second.status == "ok"
    assert second.body is not None and b"Sports" in second.body


def test_user_agent_names_vigie(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", RSS)
    fetch_source(_source(url), None, collection=FAST)
    assert feed_server.requests[-1][1]["User-Agent"].startswith("Vigie/")


def test_not_found_is_recorded_with_its_status(feed_server: FeedServer) -> None:
    result = fetch_source(_source(feed_server.url("/missing.xml")), None, collection=FAST)
    assert result.status == "error"
    assert result.http_status == 404
    assert result.error is not None and result.error.startswith("HTTP 404")


def test_server_error_is_retried_then_recorded(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", "oops", status=500, content_type="text/plain")
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "error"
    assert result.error is not None and "HTTP 500" in result.error
    assert len([p for p, _ in feed_server.requests if p == "/feed.xml"]) == 2  # 1 + 1 retry


def test_slow_source_times_out(feed_server: FeedServer) -> None:
    url = feed_server.set("/slow.xml", RSS, delay_s=3)
    quick = Collection(connect_timeout_s=1, read_timeout_s=0.3, deadline_s=5, retries=0)
    result = fetch_source(_source(url), None, collection=quick)
    assert result.status == "error"
    assert result.error == "timed out"
    assert result.duration_s < 2.5


def test_refused_connection_is_recorded() -> None:
    url = f"http://127.0.0.1:{free_port()}/feed.xml"
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("connection failed")


def test_body_over_the_size_cap_is_refused(feed_server: FeedServer) -> None:
    url = feed_server.set("/big.xml", "x" * 5000)
    capped = Collection(max_bytes=1024, retries=0)
    result = fetch_source(_source(url), None, collection=capped)
    assert result.status == "error"
    assert result.error is not None and "size cap" in result.error


def test_gzip_bomb_is_capped_after_decompression(feed_server: FeedServer) -> None:
    """The cap applies to decompressed bytes: 2 MB of zeros gzip to a few KB."""
    bomb = gzip.compress(b"\0" * 2_000_000)
    assert len(bomb) < 10_000
    url = feed_server.set("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    result = fetch_source(_source(url), None, collection=Collection(max_bytes=100_000, retries=0))
    assert result.status == "error"
    assert result.error is not None and "size cap" in result.error


def test_gzip_body_is_decompressed(feed_server: FeedServer) -> None:
    url = feed_server.set(
        "/feed.xml", gzip.compress(RSS.encode()), headers={"Content-Encoding": "gzip"}
    )
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "ok"
    assert result.body == RSS.encode()


def test_redirect_to_a_file_url_is_refused(feed_server: FeedServer) -> None:
    url = feed_server.set("/moved.xml", "", status=302, location="file:///etc/passwd")
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "error"
    assert result.error == "redirected to a non-HTTP URL (refused)"


def test_redirect_to_http_is_followed(feed_server: FeedServer) -> None:
    target = feed_server.set("/new.xml", RSS)
    url = feed_server.set("/old.xml", "", status=301, location=target)
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "ok"
    assert result.final_url == target


def test_one_bad_source_does_not_stop_the_others(feed_server: FeedServer) -> None:
    """HTML page, garbage, 404 and a good feed: each gets its own outcome, in config order."""
    sources = [
        _source(feed_server.set("/good.xml", RSS), "good"),
        _source(
            feed_server.set(
                "/page", "<!DOCTYPE html><html><body>Moved</body></html>", content_type="text/html"
            ),
            "html",
        ),
        _source(
            feed_server.set(
                "/garbage", b"\x00\x01\x02garbage\xff", content_type="application/octet-stream"
            ),
            "garbage",
        ),
        _source(feed_server.url("/nothing"), "missing"),
    ]
    fetched = fetch_sources(sources, {}, collection=FAST)
    mentions, outcomes = collect_sources(
        sources, fetched, collected_at=datetime.now(UTC), max_entries=100
    )
    by_name = {o.fetch.source: o for o in outcomes}
    assert [o.fetch.source for o in outcomes] == ["good", "html", "garbage", "missing"]
    assert by_name["good"].status == "ok" and by_name["good"].items == 2
    assert by_name["html"].error == "not a feed: an HTML page"
    assert by_name["garbage"].status == "error"
    assert by_name["garbage"].error is not None and by_name["garbage"].error.startswith(
        "not a feed"
    )
    assert by_name["missing"].error is not None and "404" in by_name["missing"].error
    assert {m.source for m in mentions} == {"good"}
    assert mentions[0].url == "https://quotidien.example/a/1"


def test_fetch_sources_bounds_requests_in_flight_per_host(feed_server: FeedServer) -> None:
    """Every source is on one host: per_host caps the requests in flight, not concurrency."""
    sources = [_source(feed_server.set(f"/f{i}.xml", RSS, delay_s=0.2), f"s{i}") for i in range(8)]
    bounded = Collection(connect_timeout_s=2, read_timeout_s=5, concurrency=8, per_host=2)
    fetched = fetch_sources(sources, {}, collection=bounded)
    assert [r.status for r in fetched] == ["ok"] * 8
    assert [r.source for r in fetched] == [s.name for s in sources]  # config order
    assert 1 <= feed_server.peak_in_flight <= 2


def test_fetch_sources_runs_requests_concurrently_up_to_the_global_bound(
    feed_server: FeedServer,
) -> None:
    sources = [_source(feed_server.set(f"/f{i}.xml", RSS, delay_s=0.3), f"s{i}") for i in range(12)]
    wide = Collection(connect_timeout_s=2, read_timeout_s=5, concurrency=4, per_host=64)
    fetched = fetch_sources(sources, {}, collection=wide)
    assert all(r.status == "ok" for r in fetched)
    assert 2 <= feed_server.peak_in_flight <= 4


def test_fetch_sources_reuses_connections(feed_server: FeedServer) -> None:
    """Keep-alive: twenty fetches by two workers use a handful of connections, not twenty."""
    sources = [_source(feed_server.set(f"/f{i}.xml", RSS), f"s{i}") for i in range(20)]
    pair = Collection(connect_timeout_s=2, read_timeout_s=5, concurrency=2, per_host=2)
    fetched = fetch_sources(sources, {}, collection=pair)
    assert all(r.status == "ok" for r in fetched)
    assert len(feed_server.clients) == 20
    assert len(set(feed_server.clients)) <= 4


def test_a_429_is_retried_after_the_time_it_asks_for(feed_server: FeedServer) -> None:
    url = feed_server.set(
        "/busy.xml",
        "slow down",
        status=429,
        content_type="text/plain",
        headers={"Retry-After": "1"},
    )
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "error"
    assert result.http_status == 429
    assert len([p for p, _ in feed_server.requests if p == "/busy.xml"]) == 2


def test_fetch_progress_counts_every_source_once(feed_server: FeedServer) -> None:
    sources = [_source(feed_server.set(f"/feed{n}.xml", RSS), f"Q{n}") for n in range(12)]
    sources.append(_source(feed_server.url("/missing.xml"), "missing"))  # a failure counts too
    seen: list[tuple[int, int]] = []
    results = fetch_sources(
        sources,
        {},
        collection=FAST.model_copy(update={"concurrency": 4}),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(results) == 13
    assert seen == [(done, 13) for done in range(14)]


def test_the_proxy_of_the_environment_is_used_unless_no_proxy_names_the_host(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is honoured as requests did: the proxy gets the absolute URL; NO_PROXY wins."""
    feed_server.set("/feed.xml", RSS)
    monkeypatch.setenv("HTTP_PROXY", feed_server.url(""))
    monkeypatch.setenv("NO_PROXY", "direct.example")
    fetch_source(_source("http://presse.example/feed.xml"), None, collection=FAST)
    assert feed_server.requests[-1][0] == "http://presse.example/feed.xml"

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = fetch_source(_source(feed_server.url("/feed.xml")), None, collection=FAST)
    assert direct.status == "ok"
    assert feed_server.requests[-1][0] == "/feed.xml"


def test_a_malformed_proxy_variable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://proxy.example:21")
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        fetch_source(_source("https://presse.example/feed.xml"), None, collection=FAST)


def test_many_sources_on_one_host_are_polled_politely_fairly_and_starve_no_other_host(
    tmp_path: Path,
) -> None:
    """Issue 23, item 2: 16 news searches on one host, 2 at a time (`per_host`), need more
    time than the fetch step has; 4 feeds on another host share the step. The other host's
    feeds are all fetched in the first cycle, the search host never has more than 2 requests
    in flight, each step ends within its deadline and margin, and the searches are polled in
    turn: none twice before every one once (those the step had no time for go first)."""
    bounds = Collection(
        connect_timeout_s=1, read_timeout_s=2, deadline_s=2, retries=0, concurrency=4, per_host=2
    )
    path = tmp_path / "vigie.duckdb"
    with FeedServer() as search, FeedServer() as other:
        searches = [
            _source(search.set(f"/search{n}.xml", RSS, delay_s=0.5), f"search {n:02d}")
            for n in range(16)
        ]
        feeds = [_source(other.set(f"/f{n}.xml", RSS, delay_s=0.5), f"feed {n}") for n in range(4)]
        sources = [*searches, *feeds]
        polled: list[set[str]] = []
        for cycle in range(10):  # a guard: about 6 searches fit in each step
            now = datetime(2026, 12, 7, 9, tzinfo=UTC) + timedelta(minutes=10 * cycle)
            # A request cut at the last step's deadline ends on the server after its delay:
            # each cycle's peak is its own.
            drained = time.monotonic() + 5
            while search.in_flight and time.monotonic() < drained:
                time.sleep(0.05)
            search.peak_in_flight = 0
            with open_warehouse(path) as con:
                store = Store(con)
                began = time.monotonic()
                fetched = fetch_sources(sources, store.source_states(), collection=bounds)
                elapsed = time.monotonic() - began
                _, outcomes = collect_sources(sources, fetched, collected_at=now, max_entries=10)
                store.load_cycle(f"c{cycle}", sources, outcomes, [], [], now)
            assert elapsed < bounds.deadline_s + STEP_MARGIN_S + 1.5, elapsed
            assert search.peak_in_flight <= 2
            by_name = {r.source: r for r in fetched}
            assert {r.status for r in fetched} <= {"ok", "not_modified", "deferred"}, by_name
            if cycle == 0:
                assert all(by_name[f.name].status == "ok" for f in feeds)
            polled.append({s.name for s in searches if by_name[s.name].status != "deferred"})
            if set().union(*polled) == {s.name for s in searches}:
                break
    everyone = {s.name for s in searches}
    assert set().union(*polled) == everyone, polled
    assert len(polled) > 1 and all(polled), polled  # more than a step's worth, each step some
    # None is polled twice before every one was polled once (the cycle that polls the last
    # ones may poll again, after them, the first ones).
    for cycle, now_polled in enumerate(polled):
        before = set().union(*polled[:cycle])
        assert not now_polled & before or before | now_polled == everyone, polled
