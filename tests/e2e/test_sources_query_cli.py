"""`vigie sources test` and `vigie query test` as a user runs them (in this process), the real
FeedServer serving the demo scenario and fixture feeds (with sources that fail), and a real
DuckDB warehouse filled by a real `vigie run --once`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.commands import vigie_here
from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.localservers import FeedServer, MailSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECOND_WATCH = """
[[watch]]
name = "rappel"
query = 'rappel* OR listeria'
"""


def _config(
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
    *,
    failing: bool,
) -> Path:
    """The demo's burst (its HTML page left out unless `failing`), a JSON Feed, and when
    `failing` a feed that is gone (404) and one that never answers in time."""
    urls = scenario.publish(feed_server, "burst", datetime.now(UTC))
    sources: list[dict[str, object]] = [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
        if failing or s.fmt != "html"
    ]
    feed = (FIXTURES / "sources" / "jsonfeed" / "feed.json").read_bytes()
    json_type = "application/json; charset=utf-8"
    sources.append(
        {
            "name": "Blogue JSON",
            "kind": "jsonfeed",
            "url": feed_server.set("/feed.json", feed, content_type=json_type),
        }
    )
    feed_server.set(
        "/feed-2.json",
        (FIXTURES / "sources" / "jsonfeed" / "feed-2.json").read_bytes(),
        content_type=json_type,
    )
    if failing:
        slow = (FIXTURES / "feeds" / "rss2.xml").read_bytes()
        sources.append({"name": "Disparu", "url": feed_server.url("/gone.xml")})
        sources.append({"name": "Lent", "url": feed_server.set("/slow.xml", slow, delay_s=5)})
    return write_config(sources=sources, smtp_port=mail_sink.port, extra=SECOND_WATCH)


def _warehouse(config: Path) -> Path:
    return config.parent / "wh" / "vigie.duckdb"


def test_sources_test_shows_each_source_and_stores_nothing(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _config(feed_server, mail_sink, write_config, failing=True)
    result = vigie_here("--config", str(config), "sources", "test")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["SOURCE", "KIND", "STATUS"]
    rows = {line[:28].strip(): line[28:].split() for line in lines[1:-1]}
    assert rows["Le Quotidien du Nord"][:4] == ["rss", "ok", "200", "10"]
    assert rows["Blogue du terroir"][:3] == ["rss", "not", "a"]
    assert rows["Disparu"][:3] == ["rss", "failed", "404"]
    assert rows["Lent"][:3] == ["rss", "failed", "-"]
    assert rows["Blogue JSON"][:2] == ["jsonfeed", "ok"]
    assert "\x1b" not in result.stdout
    assert lines[-1].startswith("3 of 7 sources FAILED (Blogue du terroir, Disparu, Lent)")
    assert "vigie check" in lines[-1]
    # Progress goes to stderr (vigie.progress: no redraws off a terminal), the table to stdout.
    assert "Fetching 7 source(s)" in result.stderr and "\r" not in result.stderr
    assert "fetching" not in result.stdout.lower()
    assert not _warehouse(config).exists()
    assert not _warehouse(config).parent.exists()

    as_json = vigie_here("--config", str(config), "sources", "test", "--json")
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert (data["total"], data["failed"], data["stored"]) == (7, 3, False)
    quotidien = next(s for s in data["sources"] if s["name"] == "Le Quotidien du Nord")
    assert quotidien["status"] == "ok"
    # The burst's ten items of this daily: seven name the Laiterie Boréale (no recall without it).
    assert (quotidien["items"], quotidien["matched"]) == (10, 7)
    assert datetime.fromisoformat(quotidien["newest_at"]) > datetime.now(UTC) - timedelta(hours=2)

    only = vigie_here(
        "--config", str(config), "sources", "test", "--source", "Le Quotidien du Nord"
    )
    assert only.returncode == 0, only.stdout
    assert only.stdout.splitlines()[-1].startswith("All 1 source answered: 10 items, 7 match")


def test_query_test_on_what_a_watch_cycle_stored(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter, prefect_harness: str
) -> None:
    config = _config(feed_server, mail_sink, write_config, failing=False)
    # The session's Prefect server: without one, the cycle would start a temporary server.
    run = vigie_here(
        "--config", str(config), "run", "--once", "--json", env={"PREFECT_API_URL": prefect_harness}
    )
    assert run.returncode == 0, run.stderr
    warehouse = _warehouse(config)
    before = (hashlib.sha256(warehouse.read_bytes()).hexdigest(), warehouse.stat().st_mtime_ns)

    tested = vigie_here("--config", str(config), "sources", "test")
    assert tested.returncode == 0, tested.stdout
    after = (hashlib.sha256(warehouse.read_bytes()).hexdigest(), warehouse.stat().st_mtime_ns)
    assert after == before  # a source test never touches the warehouse

    result = vigie_here(
        "--config", str(config), "query", "test", "boreale NEAR/3 rappel*", "--limit", "30"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Query: boreale NEAR/3 rappel*" in out
    assert "Matched: " in out
    assert "Rappel Boréale : quels lots sont touchés ?" in out  # a match, with its terms
    assert "[boreale, rappel*]" in out
    # Both words are there, four apart in the title (and farther in the summary).
    far = next(line for line in out.splitlines() if "ce que l'on sait du rappel" in line)
    assert far.endswith("[has boreale, rappel*; NEAR: too far apart]")
    lacking = next(line for line in out.splitlines() if "Pétition contre" in line)
    assert lacking.endswith("[has boreale; lacks rappel*]")
    assert "  marque: " in out and "  rappel: " in out

    data = json.loads(
        vigie_here(
            "--config", str(config), "query", "test", "boreale NOT listeria", "--json"
        ).stdout
    )
    assert data["matched"] > 0
    assert data["excluded_by_not"] > 0
    assert data["near_miss_sample"][0]["why"] == "excluded by NOT listeria"
    assert data["terms"]["NOT listeria"] == data["excluded_by_not"]
    assert {w["watch"] for w in data["watches"]} == {"marque", "rappel"}


def test_query_test_errors_say_what_to_do_in_one_line(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _config(feed_server, mail_sink, write_config, failing=False)
    missing = vigie_here("--config", str(config), "query", "test", "boreale")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1
    assert "run `vigie run --once` first" in missing.stderr
    assert not _warehouse(config).exists()

    bad = vigie_here("--config", str(config), "query", "test", "boreale AND (rappel")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "position" in bad.stderr and "closing parenthesis" in bad.stderr


def test_plain_vigie_query_still_reads_stdin() -> None:
    # `test` alone is still a query (the word "test"), as it always was.
    result = vigie_here("query", "test", input="un test\nrien\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["query: test", "match un test", "-     rien"]
    both = vigie_here("query", "boreale", "rappel")
    assert both.returncode == 2
    assert "vigie query test" in both.stderr
