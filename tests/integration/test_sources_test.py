"""`cli.sourcetest` against the real FeedServer on 127.0.0.1: each kind of answer a source can
give gets its status, items, matches and newest date; nothing is remembered or stored; the
configured bounds hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.sourcetest import check_sources, render_table
from tests.conftest import ConfigWriter
from vigie.errors import ConfigError
from vigie.localservers import FeedServer
from vigie.settings import Settings, load_settings

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
SOURCES = Path(__file__).parents[1] / "fixtures" / "sources"
JSON = "application/json; charset=utf-8"
NO_ITEMS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Vide</title>'
    "<link>https://vide.example/</link><description>rien</description></channel></rss>"
)


def _settings(write_config: ConfigWriter, sources: str, collection: str = "") -> Settings:
    """The test configuration (tests/conftest.py) with these [[sources]] blocks."""
    return load_settings(write_config(sources=[], smtp_port=25, extra=f"{collection}\n{sources}"))


def _rss(name: str, url: str) -> str:
    return f'[[sources]]\nname = "{name}"\nurl = "{url}"\n'


def serve_every_answer(server: FeedServer) -> str:
    """One source per kind of answer: RSS, Atom, JSON Feed, no items, an HTML page, a 404, a
    timeout and a JSON API that answers garbage; returns their [[sources]]."""
    server.set("/rss2.xml", (FEEDS / "rss2.xml").read_bytes())
    server.set("/atom.xml", (FEEDS / "atom.xml").read_bytes())
    server.set("/empty.xml", NO_ITEMS)
    server.set(
        "/home", (FEEDS / "html_page.html").read_bytes(), content_type="text/html; charset=utf-8"
    )
    server.set("/slow.xml", (FEEDS / "rss2.xml").read_bytes(), delay_s=3)
    server.set("/feed.json", (SOURCES / "jsonfeed" / "feed.json").read_bytes(), content_type=JSON)
    server.set(
        "/feed-2.json", (SOURCES / "jsonfeed" / "feed-2.json").read_bytes(), content_type=JSON
    )
    server.set(
        "/api/mentions",
        (SOURCES / "json_api" / "garbage.txt").read_bytes(),
        content_type=JSON,
    )
    return "".join(
        [
            _rss("Quotidien", server.url("/rss2.xml")),
            _rss("Atom", server.url("/atom.xml")),
            _rss("Vide", server.url("/empty.xml")),
            _rss("Accueil", server.url("/home")),
            _rss("Disparu", server.url("/missing.xml")),
            _rss("Lent", server.url("/slow.xml")),
            '[[sources]]\nname = "Blogue"\nkind = "jsonfeed"\n'
            f'url = "{server.url("/feed.json")}"\n',
            '[[sources]]\nname = "API"\nkind = "json_api"\n'
            f'url = "{server.url("/api/mentions")}"\n'
            '[sources.mapping]\nitems = "data.items"\ntitle = "headline"\nurl = "link"\n',
        ]
    )


def test_each_kind_of_answer_gets_its_status(
    feed_server: FeedServer, write_config: ConfigWriter
) -> None:
    settings = _settings(write_config, serve_every_answer(feed_server))
    report = check_sources(settings)
    by_name = {c.name: c for c in report.checks}
    assert [c.name for c in report.checks] == [s.name for s in settings.sources]
    got = {n: (c.status, c.http_status) for n, c in by_name.items()}
    assert got == {
        "Quotidien": ("ok", 200),
        "Atom": ("ok", 200),
        "Vide": ("empty", 200),
        "Accueil": ("not a feed", 200),
        "Disparu": ("failed", 404),
        "Lent": ("failed", None),
        "Blogue": ("ok", 200),
        "API": ("failed", 200),  # it answered, with something else than JSON
    }
    quotidien = by_name["Quotidien"]
    # Three entries, one about the Laiterie Boréale; the undated one says nothing of freshness.
    assert (quotidien.items, quotidien.matched) == (3, 1)
    assert quotidien.newest_at == datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
    assert quotidien.reason is None
    assert by_name["Blogue"].items > 0
    assert by_name["Accueil"].reason == "not a feed: an HTML page"
    assert by_name["Disparu"].reason == "HTTP 404 Not Found"
    assert by_name["Lent"].reason == "timed out"
    assert by_name["API"].reason == "not JSON"
    assert [c.name for c in report.failing] == ["Accueil", "Disparu", "Lent", "API"]


def test_nothing_is_remembered_or_stored(
    feed_server: FeedServer, write_config: ConfigWriter
) -> None:
    url = feed_server.set("/rss2.xml", (FEEDS / "rss2.xml").read_bytes())
    settings = _settings(write_config, _rss("Quotidien", url))
    check_sources(settings)
    again = check_sources(settings)
    # A watch cycle would send the ETag it kept and get a 304; a test asks for the whole feed.
    assert again.checks[0].http_status == 200
    assert [h.get("If-None-Match") for _, h in feed_server.requests] == [None, None]
    assert not settings.warehouse_path.exists()
    assert not settings.warehouse_path.parent.exists()


def test_fetches_stay_within_the_configured_bounds(
    feed_server: FeedServer, write_config: ConfigWriter
) -> None:
    sources = ""
    for n in range(6):
        sources += _rss(f"Feed {n}", feed_server.set(f"/f{n}.xml", NO_ITEMS, delay_s=0.2))
    settings = _settings(write_config, sources, "concurrency = 2\nper_host = 2")
    seen: list[tuple[int, int]] = []
    report = check_sources(settings, progress=lambda done, total: seen.append((done, total)))
    assert len(report.checks) == 6
    assert 1 <= feed_server.peak_in_flight <= 2
    assert seen == [(n, 6) for n in range(7)]  # 0 first, then each fetch once, in order


def test_only_the_named_sources_are_fetched(
    feed_server: FeedServer, write_config: ConfigWriter
) -> None:
    sources = serve_every_answer(feed_server)
    settings = _settings(write_config, sources)
    report = check_sources(settings, ["Atom", "Quotidien"])
    assert [c.name for c in report.checks] == ["Quotidien", "Atom"]  # configuration order
    assert {path for path, _ in feed_server.requests} == {"/rss2.xml", "/atom.xml"}
    assert render_table(report)[-1].startswith("All 2 sources answered: 5 items, 2 match")


def test_an_unknown_source_name_is_refused_before_fetching(
    feed_server: FeedServer, write_config: ConfigWriter
) -> None:
    settings = _settings(write_config, serve_every_answer(feed_server))
    with pytest.raises(ConfigError, match=r"no source named 'Quotidian'.*'Quotidien'"):
        check_sources(settings, ["Quotidian"])
    assert feed_server.requests == []
