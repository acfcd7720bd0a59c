"""Every source kind against the real FeedServer on 127.0.0.1, serving the response files of
tests/fixtures/sources: pagination, markers across cycles, the guards of fetch_source on API
calls, failures recorded; and one full collection of all kinds into a real DuckDB warehouse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.collect.fetch import collect_sources, fetch_any_source, fetch_source, fetch_sources
from tasks.collect.sources import fetch_api_source
from tests.configs import WATCH_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import FetchResult, SourceState
from vigie.settings import Collection, JsonMapping, Source
from warehouse.connection import open_warehouse
from warehouse.store import Store

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
FAST = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=5, retries=1)
JSON = "application/json; charset=utf-8"
TAG = "/api/v1/timelines/tag/LaiterieBoreale"
SEARCH_POSTS = "/xrpc/app.bsky.feed.searchPosts"
HN = "/api/v1/search_by_date"
MAPPING = JsonMapping(
    items="data.items",
    id="id",
    title="headline",
    url="link",
    summary="body",
    author="by.name",
    published_at="published",
    reach="stats.shares",
    next="paging.next",
)


def _file(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / name).read_bytes()


def _serve(
    server: FeedServer, path: str, kind: str, name: str, query: dict[str, str] | None = None
) -> str:
    content_type = "application/rss+xml; charset=utf-8" if name.endswith(".xml") else JSON
    return server.set(path, _file(kind, name), content_type=content_type, query=query)


def serve_first_cycle(server: FeedServer) -> None:
    """Every kind's documents as a first cycle finds them (each API with a second page)."""
    _serve(server, "/feed.json", "jsonfeed", "feed.json")
    _serve(server, "/feed-2.json", "jsonfeed", "feed-2.json")
    _serve(server, "/rss/search", "news_search", "search.xml")
    _serve(server, "/search.json", "reddit", "search.json")
    _serve(server, "/search.json", "reddit", "search-2.json", {"after": "t3_1h5p3c"})
    _serve(server, TAG, "mastodon", "tag.json")
    server.set(TAG, "[]", content_type=JSON, query={"max_id": "113552000000000002"})
    _serve(server, "/api/v2/search", "mastodon", "search.json")
    server.set(
        "/api/v2/search",
        '{"accounts": [], "statuses": [], "hashtags": []}',
        content_type=JSON,
        query={"max_id": "113552000000000006"},
    )
    _serve(server, SEARCH_POSTS, "bluesky", "search.json")
    _serve(server, SEARCH_POSTS, "bluesky", "search-2.json", {"cursor": "25"})
    _serve(server, HN, "hackernews", "search.json")
    _serve(server, HN, "hackernews", "search-2.json", {"page": "1"})
    _serve(server, "/api/mentions", "json_api", "items.json")
    _serve(server, "/api/mentions", "json_api", "items-2.json", {"page": "2"})


def serve_second_cycle(server: FeedServer) -> None:
    """What is new an hour later; the pages already read stay where they were."""
    _serve(server, "/search.json", "reddit", "search-new.json")
    _serve(server, TAG, "mastodon", "tag-newer.json", {"min_id": "113552000000000006"})
    server.set(TAG, "[]", content_type=JSON, query={"min_id": "113552000000000007"})
    server.set(
        "/api/v2/search",
        '{"accounts": [], "statuses": [], "hashtags": []}',
        content_type=JSON,
        query={"min_id": "113552000000000006"},
    )
    since = {"since": "2026-11-25T15:20:01Z"}
    _serve(server, SEARCH_POSTS, "bluesky", "search-new.json", since)
    _serve(server, SEARCH_POSTS, "bluesky", "search-2.json", {**since, "cursor": "50"})
    _serve(
        server,
        HN,
        "hackernews",
        "search-new.json",
        {"numericFilters": "created_at_i>=1795618500"},
    )
    _serve(server, "/api/mentions", "json_api", "items-new.json")


def _source(server: FeedServer, kind: str, **fields: object) -> Source:
    base = server.url("")
    defaults: dict[str, dict[str, object]] = {
        "jsonfeed": {"url": server.url("/feed.json"), "platform": "blog", "tier": 2},
        "news_search": {"url": base, "language": "fr", "region": "CA", "query": "boréale"},
        "reddit": {"url": base, "query": "boreale"},
        "mastodon": {"instance": base, "tag": "LaiterieBoreale", "query": "boréale"},
        "bluesky": {"url": base, "query": "boreale"},
        "hackernews": {"url": base, "query": "boreale"},
        "json_api": {"url": server.url("/api/mentions"), "mapping": MAPPING},
    }
    return Source.model_validate({"name": kind, "kind": kind, **defaults[kind], **fields})


def _next_state(result: FetchResult, name: str) -> SourceState:
    return SourceState(name, result.etag, result.last_modified, result.marker)


def _cycle(server: FeedServer) -> list[str]:
    """The requests (path and query) made since the last call."""
    made = [target for target, _ in server.requests]
    server.requests.clear()
    return made


# --- one kind at a time ------------------------------------------------------------------------


def test_jsonfeed_follows_next_url_then_uses_conditional_get(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "jsonfeed")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.status == "ok" and first.entries is not None
    assert len(first.entries) == 4 and first.pages == 2
    assert _cycle(feed_server) == ["/feed.json", "/feed-2.json"]
    assert first.etag and first.marker == "1795618800"
    # Unchanged: one conditional request, answered 304.
    second = fetch_any_source(source, _next_state(first, "jsonfeed"), collection=FAST)
    assert second.status == "not_modified"
    assert _cycle(feed_server) == ["/feed.json"]
    assert feed_server.requests == []
    # Changed: the new page is read, and the old items on it stop the paging.
    document = json.loads(_file("jsonfeed", "feed.json"))
    document["items"].insert(
        0,
        {
            "id": "new",
            "url": "https://bulletin.example/new",
            "title": "Nouveau rappel Boréale",
            "date_published": "2026-11-25T16:00:00Z",
        },
    )
    feed_server.set("/feed.json", json.dumps(document), content_type=JSON)
    third = fetch_any_source(source, _next_state(first, "jsonfeed"), collection=FAST)
    assert third.status == "ok" and third.entries is not None
    assert third.entries[0].title == "Nouveau rappel Boréale"
    assert _cycle(feed_server) == ["/feed.json"]
    assert third.marker == "1795622400"


def test_news_search_request_and_entries(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    result = fetch_any_source(_source(feed_server, "news_search"), None, collection=FAST)
    assert result.status == "ok" and result.entries is not None
    assert [e.author for e in result.entries] == ["La Presse", "Le Devoir", None]
    assert feed_server.query_params("/rss/search") == [
        {"q": "boréale", "hl": "fr-CA", "gl": "CA", "ceid": "CA:fr"}
    ]
    assert result.etag is not None  # a feed: conditional GET next time


def test_reddit_pages_then_stops_at_the_marker(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "reddit")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.entries is not None and len(first.entries) == 5
    params = feed_server.query_params("/search.json")
    assert [p.get("after") for p in params] == [None, "t3_1h5p3c"]
    assert params[0] == {"q": "boreale", "sort": "new", "limit": "100", "raw_json": "1"}
    assert first.marker == "1795618800"
    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = fetch_any_source(source, _next_state(first, "reddit"), collection=FAST)
    assert second.entries is not None
    assert [e.guid for e in second.entries] == ["t3_1h5p6f", "t3_1h5p5a"]
    assert len(_cycle(feed_server)) == 1  # the page reached the marker: no `after` request
    assert second.marker == "1795622400"


def test_reddit_subreddit_search(feed_server: FeedServer) -> None:
    feed_server.set("/r/Quebec/search.json", _file("reddit", "search-2.json"), content_type=JSON)
    result = fetch_any_source(
        _source(feed_server, "reddit", subreddit="r/Quebec"), None, collection=FAST
    )
    assert result.status == "ok"
    assert feed_server.query_params("/r/Quebec/search.json")[0]["restrict_sr"] == "1"


def test_mastodon_tag_and_search_then_newer_with_min_id(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "mastodon")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.entries is not None and len(first.entries) == 5
    assert first.marker == "113552000000000006"
    assert feed_server.query_params(TAG) == [
        {"limit": "40"},
        {"limit": "40", "max_id": "113552000000000002"},
    ]
    assert feed_server.query_params("/api/v2/search")[0] == {
        "q": "boréale",
        "type": "statuses",
        "limit": "40",
    }
    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = fetch_any_source(source, _next_state(first, "mastodon"), collection=FAST)
    assert second.entries is not None
    assert [e.link for e in second.entries] == ["https://piaille.fr/@jtremblay/113552000000000007"]
    assert second.marker == "113552000000000007"
    assert [p.get("min_id") for p in feed_server.query_params(TAG)] == [
        "113552000000000006",
        "113552000000000007",
    ]
    assert all("max_id" not in p for p in feed_server.query_params("/api/v2/search"))


def test_bluesky_cursor_then_since_on_the_next_cycle(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "bluesky")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.entries is not None and len(first.entries) == 3
    assert [p.get("cursor") for p in feed_server.query_params(SEARCH_POSTS)] == [None, "25"]
    assert first.marker == "1795620001"
    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = fetch_any_source(source, _next_state(first, "bluesky"), collection=FAST)
    assert second.entries is not None
    assert [e.title[:24] for e in second.entries] == [
        "La Laiterie Boréale a en",
        "Le rappel de la Laiterie",
    ]
    params = feed_server.query_params(SEARCH_POSTS)
    assert [(p["since"], p.get("cursor")) for p in params] == [
        ("2026-11-25T15:20:01Z", None),
        ("2026-11-25T15:20:01Z", "50"),  # older posts there: the paging ends
    ]
    assert second.marker == "1795622400"


def test_hackernews_pages_then_numeric_filter(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "hackernews")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.entries is not None and [e.guid for e in first.entries] == [
        "4250",
        "4242",
        "4100",
    ]
    assert [p.get("page") for p in feed_server.query_params(HN)] == [None, "1"]
    assert feed_server.query_params(HN)[0]["tags"] == "(story,comment)"
    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = fetch_any_source(source, _next_state(first, "hackernews"), collection=FAST)
    assert second.entries is not None and [e.guid for e in second.entries] == ["4300", "4250"]
    assert feed_server.query_params(HN) == [
        {
            "query": "boreale",
            "tags": "(story,comment)",
            "hitsPerPage": "100",
            "numericFilters": "created_at_i>=1795618500",
        }
    ]
    assert second.marker == "1795622400"


def test_json_api_next_path_then_marker(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    source = _source(feed_server, "json_api")
    first = fetch_any_source(source, None, collection=FAST)
    assert first.entries is not None and len(first.entries) == 4
    assert first.marker == "1795617000"
    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = fetch_any_source(source, _next_state(first, "json_api"), collection=FAST)
    assert second.entries is not None and [e.guid for e in second.entries] == ["990", "981"]
    assert _cycle(feed_server) == ["/api/mentions"]  # reached the marker: no page 2


# --- bounds and failures -----------------------------------------------------------------------


def test_max_pages_caps_each_search(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    result = fetch_any_source(
        _source(feed_server, "reddit"), None, collection=FAST.model_copy(update={"max_pages": 1})
    )
    assert result.entries is not None and len(result.entries) == 3
    assert len(feed_server.requests) == 1


def test_max_entries_bounds_the_total(feed_server: FeedServer) -> None:
    serve_first_cycle(feed_server)
    result = fetch_any_source(
        _source(feed_server, "reddit"), None, collection=FAST.model_copy(update={"max_entries": 3})
    )
    assert result.entries is not None and len(result.entries) == 3
    assert len(feed_server.requests) == 1  # nothing left to read a second page for


def test_size_cap_bounds_the_total(feed_server: FeedServer) -> None:
    """Each page gets what the earlier pages left of max_bytes."""
    serve_first_cycle(feed_server)
    first_page = len(_file("reddit", "search.json"))
    capped = FAST.model_copy(update={"max_bytes": first_page + 100})
    result = fetch_any_source(_source(feed_server, "reddit"), None, collection=capped)
    assert result.status == "ok" and result.entries is not None and len(result.entries) == 3
    assert result.error is not None and "size cap" in result.error
    assert result.size == first_page <= capped.max_bytes
    assert result.marker is None  # a stretch was not read: read it again next cycle


def test_a_failed_second_page_keeps_the_first_and_the_old_marker(
    feed_server: FeedServer,
) -> None:
    serve_first_cycle(feed_server)
    feed_server.set("/api/mentions", "oops", status=500, query={"page": "2"})
    old = SourceState("json_api", marker="1795000000")
    result = fetch_any_source(_source(feed_server, "json_api"), old, collection=FAST)
    assert result.status == "ok" and result.entries is not None and len(result.entries) == 3
    assert result.error == "HTTP 500 Internal Server Error"
    assert result.marker == "1795000000"
    fetched = [result]
    _, outcomes = collect_sources(
        [_source(feed_server, "json_api")], fetched, collected_at=datetime.now(UTC), max_entries=50
    )
    assert outcomes[0].status == "ok" and outcomes[0].error == "HTTP 500 Internal Server Error"


def test_not_json_is_a_recorded_parse_error(feed_server: FeedServer) -> None:
    feed_server.set("/api/mentions", _file("json_api", "garbage.txt"), content_type=JSON)
    feed_server.set(SEARCH_POSTS, "<html>Too many requests</html>", content_type="text/html")
    sources = [_source(feed_server, "json_api"), _source(feed_server, "bluesky")]
    fetched = fetch_sources(sources, {}, collection=FAST)
    mentions, outcomes = collect_sources(
        sources, fetched, collected_at=datetime.now(UTC), max_entries=50
    )
    assert mentions == []
    assert [(o.status, o.error) for o in outcomes] == [("error", "not JSON"), ("error", "not JSON")]


def test_api_requests_get_the_guards_of_fetch_source(feed_server: FeedServer) -> None:
    """User-Agent, retries honouring Retry-After, status errors, http(s)-only redirects."""
    feed_server.set(HN, "slow down", status=429, headers={"Retry-After": "0"})
    result = fetch_any_source(_source(feed_server, "hackernews"), None, collection=FAST)
    assert result.status == "error" and result.http_status == 429
    assert len(feed_server.requests) == 2  # one retry
    assert all(h["User-Agent"].startswith("Vigie/") for _, h in feed_server.requests)
    feed_server.set("/api/mentions", "", status=302, location="file:///etc/passwd")
    refused = fetch_any_source(_source(feed_server, "json_api"), None, collection=FAST)
    assert refused.error == "redirected to a non-HTTP URL (refused)"


def test_a_next_page_on_another_server_is_not_fetched(feed_server: FeedServer) -> None:
    document = json.loads(_file("json_api", "items.json"))
    document["paging"]["next"] = "http://169.254.169.254/latest/meta-data"
    feed_server.set("/api/mentions", json.dumps(document), content_type=JSON)
    result = fetch_api_source(_source(feed_server, "json_api"), None, collection=FAST)
    assert result.status == "ok" and result.error == "next page on another server (refused)"
    assert len(feed_server.requests) == 1


def test_the_deadline_covers_all_pages(feed_server: FeedServer) -> None:
    feed_server.set(HN, _file("hackernews", "search.json"), content_type=JSON, delay_s=0.4)
    quick = FAST.model_copy(update={"deadline_s": 0.6, "retries": 0})
    result = fetch_any_source(_source(feed_server, "hackernews"), None, collection=quick)
    assert result.duration_s < 1.5
    assert result.status == "ok" and result.pages == 1  # no time left for the second page


def test_the_fetch_steps_deadline_cuts_paging_and_defers_what_it_had_no_time_for(
    feed_server: FeedServer,
) -> None:
    """Issue 20, item 1, for kinds that page: the step's deadline comes before the source's
    own (`deadline_s`). A page read before it is kept, the marker held so the next cycle reads
    the rest again; a source the step had no time to start, or whose first page it cut, is
    deferred (not failed)."""
    feed_server.set(HN, _file("hackernews", "search.json"), content_type=JSON, delay_s=0.4)
    roomy = FAST.model_copy(update={"deadline_s": 5, "retries": 0, "concurrency": 1})
    sources = [_source(feed_server, "hackernews"), _source(feed_server, "hackernews", name="bis")]
    soon = datetime.now(UTC) + timedelta(seconds=0.6)
    paged, not_started = fetch_sources(sources, {}, collection=roomy, ends_at=soon)
    assert (paged.status, paged.pages, paged.marker) == ("ok", 1, None)
    assert paged.entries and "cut at the fetch step's deadline" in (paged.error or "")
    assert not_started.status == "deferred" and not_started.url == sources[1].url
    assert (not_started.error or "").startswith("not started before the fetch step's deadline")
    (cut,) = fetch_sources(
        sources[:1], {}, collection=roomy, ends_at=datetime.now(UTC) + timedelta(seconds=0.2)
    )
    assert cut.status == "deferred" and cut.url == sources[0].url and cut.pages == 0
    assert (cut.error or "").startswith("cut at the fetch step's deadline")


# --- all kinds into a real warehouse -----------------------------------------------------------

ALL_KINDS_TOML = (
    WATCH_TOML
    + """
[[sources]]
name = "Le Bulletin"
kind = "jsonfeed"
url = "{base}/feed.json"
platform = "blog"
tier = 2

[[sources]]
name = "Google Actualités"
kind = "news_search"
url = "{base}"
language = "fr"
region = "CA"

[[sources]]
name = "Reddit"
kind = "reddit"
url = "{base}"

[[sources]]
name = "Piaille"
kind = "mastodon"
instance = "{base}"
tag = "LaiterieBoreale"
query = "boreale"

[[sources]]
name = "Bluesky"
kind = "bluesky"
url = "{base}"

[[sources]]
name = "Hacker News"
kind = "hackernews"
url = "{base}"

[[sources]]
name = "Veille API"
kind = "json_api"
url = "{base}/api/mentions"
tier = 1
[sources.mapping]
items = "data.items"
id = "id"
title = "headline"
url = "link"
summary = "body"
author = "by.name"
published_at = "published"
reach = "stats.shares"
next = "paging.next"

[email]
sender = "vigie@laiterie-boreale.example"

[collection]
connect_timeout_s = 1
read_timeout_s = 2
deadline_s = 10
"""
)


def _run_cycle(path: Path, settings_sources: tuple[Source, ...], collection: Collection) -> dict:
    now = datetime.now(UTC)
    with open_warehouse(path) as con:
        states = Store(con).source_states()
    fetched = fetch_sources(settings_sources, states, collection=collection)
    mentions, outcomes = collect_sources(
        settings_sources, fetched, collected_at=now, max_entries=collection.max_entries
    )
    with open_warehouse(path) as con:
        loaded = Store(con).load_cycle(
            f"c-{now:%H%M%S%f}", settings_sources, outcomes, mentions, [], now
        )
    return {"outcomes": outcomes, "loaded": loaded, "mentions": mentions}


def test_all_kinds_collected_into_duckdb_over_two_cycles(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    serve_first_cycle(feed_server)
    settings = settings_from(tmp_path, ALL_KINDS_TOML.replace("{base}", feed_server.url("")))
    path = settings.warehouse_path
    first = _run_cycle(path, settings.sources, settings.collection)
    assert [(o.fetch.source, o.status) for o in first["outcomes"]] == [
        (s.name, "ok") for s in settings.sources
    ]
    # The derived query of the watch was searched where none was given.
    assert [(p["query"], p.get("page")) for p in feed_server.query_params(HN)] == [
        ('"laiterie boréale"', None),
        ('"laiterie boréale"', "1"),
        ("boréale", None),
        ("boréale", "1"),
    ]
    with open_warehouse(path) as con:
        per_source = dict(
            con.execute("SELECT source, count(*) FROM mentions GROUP BY source").fetchall()
        )
        markers = dict(con.execute("SELECT name, marker FROM sources").fetchall())
        reach = dict(
            con.execute(
                "SELECT url, reach FROM mentions WHERE reach IS NOT NULL ORDER BY url"
            ).fetchall()
        )
        ((authors,),) = con.execute(
            "SELECT count(*) FROM mentions WHERE author IS NOT NULL"
        ).fetchall()
        runs = con.execute(
            "SELECT source, items, bytes FROM source_runs ORDER BY source"
        ).fetchall()
    assert per_source == {
        "Le Bulletin": 4,
        "Google Actualités": 3,
        "Reddit": 5,
        "Piaille": 5,
        # Both searches (the phrase and the word) return the same documents here.
        "Bluesky": 3,
        "Hacker News": 3,
        "Veille API": 4,
    }
    assert markers == {
        "Le Bulletin": "1795618800",
        "Google Actualités": None,
        "Reddit": "1795618800",
        "Piaille": "113552000000000006",
        "Bluesky": "1795620001",
        "Hacker News": "1795618500",
        "Veille API": "1795617000",
    }
    assert reach["https://news.ycombinator.com/item?id=4242"] == 57
    assert reach["https://mastodon.social/@foodwatch/113552000000000006"] == 23000
    assert reach["https://veille.example/articles/981"] == 87
    assert authors >= 20
    assert all(items > 0 and size > 0 for _, items, size in runs)

    _cycle(feed_server)
    serve_second_cycle(feed_server)
    second = _run_cycle(path, settings.sources, settings.collection)
    statuses = {o.fetch.source: o.status for o in second["outcomes"]}
    assert statuses["Le Bulletin"] == "not_modified"
    assert statuses["Google Actualités"] == "not_modified"
    assert second["loaded"].new_by_source == {
        "Reddit": 1,
        "Piaille": 1,
        "Bluesky": 1,
        "Hacker News": 1,
        "Veille API": 1,
    }
    with open_warehouse(path) as con:
        markers = dict(con.execute("SELECT name, marker FROM sources").fetchall())
        updated = con.execute(
            "SELECT reach FROM mentions WHERE url = 'https://veille.example/articles/990'"
        ).fetchall()
    assert markers["Piaille"] == "113552000000000007"
    assert markers["Hacker News"] == "1795622400"
    assert markers["Le Bulletin"] == "1795618800"  # kept through a 304
    assert updated == [(3,)]


@pytest.mark.parametrize("kind", ["reddit", "bluesky", "hackernews"])
def test_a_search_kind_without_a_query_is_a_recorded_error(
    feed_server: FeedServer, kind: str
) -> None:
    source = _source(feed_server, kind).model_copy(update={"query": None})
    result = fetch_any_source(source, None, collection=FAST)
    assert result.status == "error" and result.error is not None
    assert "needs a query" in result.error
    assert feed_server.requests == []


def test_feed_server_routes_by_query_parameters(feed_server: FeedServer) -> None:
    """Exact routes first, then the most specific parameter route, then the path alone."""
    feed_server.set("/api", "path")
    feed_server.set("/api", "page 2", query={"page": "2"})
    feed_server.set("/api", "page 2 of b", query={"page": "2", "q": "b"})
    feed_server.set("/api?page=2&q=exact", "exact")
    got = {}
    for target in ["/api", "/api?page=2", "/api?q=b&page=2", "/api?page=2&q=exact", "/api?x=1"]:
        result = fetch_source(Source(name="s", url=feed_server.url(target)), None, collection=FAST)
        got[target] = result.body
    assert got == {
        "/api": b"path",
        "/api?page=2": b"page 2",
        "/api?q=b&page=2": b"page 2 of b",
        "/api?page=2&q=exact": b"exact",
        "/api?x=1": b"path",
    }
    assert feed_server.query_params("/api")[2] == {"q": "b", "page": "2"}
