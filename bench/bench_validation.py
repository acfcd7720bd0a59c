"""Benchmark: the cost of Great Expectations validation per batch, and its share of a cycle.

For batches of 1k, 10k and 100k mentions, runs the plain steps of a watch cycle (parse and
normalise feed bodies, match, validate, load into a fresh DuckDB file, detect) and prints each
step's time and validation's share. GX is imported once per process (first line). Figures only.

    python bench/bench_validation.py [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import vigie  # noqa: F401  (telemetry off)
from tasks.collect.fetch import collect_sources
from tasks.detect.volume import assess_volume, bucket_ceiling
from tasks.enrich.validate import validate_mentions
from vigie.matching import match_mentions
from vigie.models import FetchResult
from vigie.query import parse_query  # noqa: F401  (imported before timing)
from vigie.settings import Detection, Source, Watch
from warehouse.connection import open_warehouse
from warehouse.store import Store

ENTRIES_PER_FEED = 50
NOW = datetime.now(UTC)


def feed_body(feed: int) -> bytes:
    items = []
    for i in range(ENTRIES_PER_FEED):
        n = feed * ENTRIES_PER_FEED + i
        title = f"La Laiterie Boréale et le dossier {n}" if n % 3 else f"Météo du jour {n}"
        items.append(
            f"<item><title>{escape(title)}</title><link>https://ex.example/{feed}/{i}?utm_source=x</link>"
            f"<pubDate>{format_datetime(NOW - timedelta(minutes=n % 2000))}</pubDate>"
            f"<description>{escape('<p>Un résumé de la mention numéro ' + str(n) + '.</p>')}"
            f"</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f</title>'
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def cycle(size: int, folder: Path) -> dict[str, float]:
    feeds = max(1, size // ENTRIES_PER_FEED)
    sources = [Source(name=f"feed-{f}", url=f"http://127.0.0.1/{f}") for f in range(feeds)]
    fetched = [
        FetchResult(s.name, s.url, "ok", NOW, 0.0, 200, feed_body(f), {}, s.url)
        for f, s in enumerate(sources)
    ]
    watch = Watch(name="marque", query='"laiterie boréale" OR boreale')
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    mentions, outcomes = collect_sources(sources, fetched, collected_at=NOW, max_entries=1000)
    times["parse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    matched = match_mentions(mentions, [watch])
    times["match"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    checked = validate_mentions(
        matched, now=NOW, future_tolerance=timedelta(minutes=30), horizon=timedelta(days=3650)
    )
    times["validate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open_warehouse(folder / f"bench-{size}.duckdb") as con:
        Store(con).load_cycle("bench", sources, outcomes, checked.good, checked.quarantined, NOW)
    times["load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open_warehouse(folder / f"bench-{size}.duckdb") as con:
        end = bucket_ceiling(NOW)
        counts, first = Store(con).window_counts(
            "marque", end=end, window=timedelta(hours=1), windows=49
        )
        assess_volume(
            "marque",
            counts,
            window_end=end,
            window=timedelta(hours=1),
            first_seen=first,
            detection=Detection(),
        )
    times["detect"] = time.perf_counter() - t0
    times["validated_rows"] = len(matched)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    t0 = time.perf_counter()
    import great_expectations  # noqa: F401

    print(
        f"Validation benchmark (import great_expectations once: {time.perf_counter() - t0:.2f} s)"
    )
    with tempfile.TemporaryDirectory() as folder:
        cycle(200, Path(folder))  # first validation builds the context and loads the suite
        print(
            f"  {'entries':>8} {'validated':>9} {'parse':>7} {'match':>7} {'validate':>8} "
            f"{'load':>7} {'detect':>7} {'total':>7} {'GX share':>8}"
        )
        for size in args.sizes:
            t = cycle(size, Path(folder))
            steps = ("parse", "match", "validate", "load", "detect")
            total = sum(t[s] for s in steps)
            print(
                f"  {size:>8,} {int(t['validated_rows']):>9,} "
                + " ".join(f"{t[s]:>6.2f}s" if s != "validate" else f"{t[s]:>7.2f}s" for s in steps)
                + f" {total:>6.2f}s {t['validate'] / total:>8.1%}"
            )


if __name__ == "__main__":
    main()
