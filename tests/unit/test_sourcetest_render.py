"""`cli.sourcetest` output: the table a person reads (untrusted text on one line, bounded),
the conclusion that says what to do, and the JSON object."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cli.sourcetest import SourceCheck, SourcesTest, conclusion, render_table


def _check(name: str, status: str = "ok", reason: str | None = None) -> SourceCheck:
    return SourceCheck(
        name=name,
        kind="rss",
        url="https://example.org/feed.xml",
        status=status,  # type: ignore[arg-type]
        http_status=200 if status == "ok" else 404,
        items=3 if status == "ok" else 0,
        matched=1 if status == "ok" else 0,
        newest_at=datetime(2026, 11, 25, 14, 10, tzinfo=UTC) if status == "ok" else None,
        reason=reason,
        duration_s=0.1234,
    )


def test_the_table_has_a_line_per_source_and_a_conclusion() -> None:
    report = SourcesTest((_check("Le Quotidien"), _check("Radio")), 1.0)
    lines = render_table(report)
    assert lines[0].split() == [
        "SOURCE",
        "KIND",
        "STATUS",
        "HTTP",
        "ITEMS",
        "MATCH",
        "NEWEST",
        "(UTC)",
        "REASON",
    ]
    assert lines[1].split() == [
        "Le",
        "Quotidien",
        "rss",
        "ok",
        "200",
        "3",
        "1",
        "2026-11-25",
        "14:10",
    ]
    assert lines[-1] == (
        "All 2 sources answered: 6 items, 2 match the watch queries (1.0 s; nothing was stored)."
    )


def test_names_and_reasons_are_one_bounded_line_without_control_characters() -> None:
    evil = "Évil\x1b[31m\r\nsource\u202e" + "n" * 300
    report = SourcesTest((_check(evil, "failed", "HTTP 404\x07 " + "r" * 500),), 0.5)
    lines = render_table(report)
    assert len(lines) == 3
    assert not any(ch in line for line in lines for ch in "\x1b\x07\r\n\u202e")
    assert max(len(line) for line in lines) < 300


def test_the_conclusion_names_failing_sources_and_what_to_do() -> None:
    checks = (
        _check("A", "failed", "timed out"),
        _check("B", "not a feed", "not a feed: an HTML page"),
        _check("C"),
        _check("D", "failed"),
        _check("E", "failed"),
    )
    line = conclusion(SourcesTest(checks, 2.0))
    assert line.startswith("4 of 5 sources FAILED (A, B, D and 1 more): check each url")
    assert "vigie check" in line
    assert "vigie sources test --source NAME" in line


def test_json_is_one_object_with_every_source() -> None:
    report = SourcesTest((_check("A"), _check("B", "failed", "HTTP 404 Not Found")), 1.0)
    data = json.loads(json.dumps(report.as_dict()))
    assert (data["total"], data["ok"], data["failed"], data["stored"]) == (2, 1, 1, False)
    assert data["sources"][0]["newest_at"] == "2026-11-25T14:10:00+00:00"
    assert data["sources"][1]["reason"] == "HTTP 404 Not Found"
