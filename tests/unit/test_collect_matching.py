"""`collect_matching` (parse, normalise and match per document, in worker processes for a large
batch) gives what `collect_sources` then `match_mentions` give, merged copies included."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import tasks.collect.normalise
from tasks.collect.fetch import collect_matching, collect_sources
from tasks.collect.health import entry_freshness
from vigie.matching import match_mentions
from vigie.models import FetchResult
from vigie.settings import Source, Watch

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WATCHES = [
    Watch(name="laiterie", query='"Laiterie Boréale" OR rappel'),
    Watch(name="fr-only", query="fromage", languages=["fr"]),
]


def _item(n: int, title: str, summary: str, hours: int) -> str:
    date = (NOW - timedelta(hours=hours)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"<item><title>{title}</title><link>https://presse.example/a/{n}?utm_source=x</link>"
        f"<description>{summary}</description><pubDate>{date}</pubDate></item>"
    )


def _feed(*items: str) -> bytes:
    body = "".join(items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{body}</channel></rss>'.encode()


def _fetched(body: bytes | None, name: str, status: str = "ok") -> FetchResult:
    return FetchResult(
        source=name,
        url=f"https://{name}.example/rss.xml",
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        duration_s=0.1,
        http_status=200 if body is not None else 503,
        body=body,
        error=None if body is not None else "HTTP 503",
    )


def _batch() -> tuple[list[Source], list[FetchResult]]:
    """Copies of one article across sources: the richest copy matches in one case, and in
    another the richest copy matches nothing while a poorer one does."""
    a = _feed(
        _item(1, "Rappel de fromages", "court", 1),
        _item(2, "Météo du jour", "beau temps sur la ville toute la journée", 2),
        _item(3, "La Laiterie Boréale recrute", "", 3),
        _item(4, "Cheese recall in Quebec", "the English fromage story of the day", 4),
        _item(5, "Sans rapport", "rien à voir", 5),
    )
    b = _feed(
        _item(1, "Rappel de fromages", "une version bien plus longue du même article", 1),
        _item(2, "Météo du jour et rappel", "x", 2),
        _item(6, "Fromage primé", "le fromage de la semaine au marché", 6),
    )
    c = _feed(_item(3, "La Laiterie Boréale recrute", "plus long ici", 3))
    sources = [Source(name=n, url=f"https://{n}.example/rss.xml") for n in ("a", "b", "c", "d")]
    fetched = [
        _fetched(a, "a"),
        _fetched(b, "b"),
        _fetched(c, "c"),
        _fetched(None, "d", "error"),
    ]
    return sources, fetched


def _expected() -> tuple[list[object], int, dict[str, object], list[object]]:
    sources, fetched = _batch()
    mentions, outcomes = collect_sources(sources, fetched, collected_at=NOW, max_entries=100)
    matched = match_mentions(mentions, WATCHES)
    return matched, len(mentions), dict(entry_freshness(mentions)), outcomes


def test_one_pass_gives_what_collect_then_match_give() -> None:
    sources, fetched = _batch()
    expected, entries, freshness, outcomes = _expected()
    got = collect_matching(sources, fetched, WATCHES, collected_at=NOW, max_entries=100)
    assert got.matched == expected
    assert got.entries == entries == 6
    assert got.freshness == freshness
    assert got.outcomes == outcomes
    # The richest copy of article 1 (source b) is kept, with a in seen_in; article 2's richest
    # copy (a) matches nothing, so it is dropped even though b's copy says "rappel".
    first = next(m for m in got.matched if m.title == "Rappel de fromages")
    assert (first.source, first.seen_in) == ("b", ("a",))
    assert not any(m.url.endswith("/a/2") for m in got.matched)
    assert [o.fetch.body for o in got.outcomes] == [None] * 4  # the documents are let go
    assert [o.fetch.size for o in got.outcomes[:3]] == [len(f.body or b"") for f in fetched[:3]]


def test_worker_processes_give_the_same_result(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks.collect.normalise, "PARALLEL_MIN_BYTES", 0)  # this small batch too
    sources, fetched = _batch()
    expected, _, freshness, _ = _expected()
    got = collect_matching(
        sources, fetched, WATCHES, collected_at=NOW, max_entries=100, processes=2
    )
    assert got.matched == expected
    assert got.freshness == freshness
    assert "parsing worker" not in caplog.text  # parsed by the workers, not the fallback


def test_a_worker_that_cannot_run_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that exits at once (here: an interpreter that is not Python) leaves its
    shares to this process."""
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(tasks.collect.normalise, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(sys, "executable", str(broken))
    sources, fetched = _batch()
    expected, _, _, _ = _expected()
    got = collect_matching(
        sources, fetched, WATCHES, collected_at=NOW, max_entries=100, processes=2
    )
    assert got.matched == expected
    assert "a parsing worker failed" in caplog.text
