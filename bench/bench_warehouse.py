"""Benchmark: the queries of one detection pass on a warehouse of N mentions (default 10 M).

Prints, side by side in one run, the time of a detection pass read from the 5-minute aggregates
(what Vigie does) and the same counts computed from the raw mentions table, plus the time to
build the warehouse. Figures only; nothing is asserted.

    python bench/bench_warehouse.py [--mentions 10000000] [--topics 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import vigie  # noqa: F401  (telemetry off)
from tasks.detect.volume import bucket_ceiling
from warehouse.connection import open_warehouse
from warehouse.store import Store

WINDOW = timedelta(minutes=60)
WINDOWS = 49


# The year the warehouse holds by default (bench_load.py makes it end at its own clock).
YEAR_END = datetime(2026, 11, 26, tzinfo=UTC)


def build(
    path: Path,
    mentions: int,
    topics: int,
    *,
    end: datetime = YEAR_END,
    topic_names: Sequence[str] = (),
    source_names: Sequence[str] = (),
) -> float:
    """Fill the warehouse at `path` with a year of `mentions` ending at `end`, evenly spread;
    return the seconds it took.

    Each mention has one topic, `topic-0`... `topic-{topics - 1}` in turn (or `topic_names`),
    and one of 200 sources `source-0`... (or `source_names`) in turn.
    """
    topic_names = list(topic_names) or [f"topic-{k}" for k in range(topics)]
    source_names = list(source_names) or [f"source-{k}" for k in range(200)]
    t0 = time.perf_counter()
    with open_warehouse(path) as con:
        # A year of mentions, evenly spread, inserted in time order as a watch would.
        spacing = 365 * 86400 / mentions
        con.execute(
            f"""
            INSERT INTO mentions (mention_id, source, platform, tier, url, title, summary,
                author, published_at, collected_at, language, story_id, topics, cycle_id,
                sentiment)
            SELECT 'm' || i, $sources[i % len($sources) + 1],
                   ['news', 'blog', 'social', 'forum'][i % 4 + 1],
                   i % 3 + 1, 'https://example.org/a/' || i, 'Titre de la mention ' || i,
                   'Résumé', NULL,
                   $start + to_microseconds((i * {spacing} * 1e6)::BIGINT), $end,
                   CASE WHEN i % 5 = 0 THEN 'en' ELSE 'fr' END,
                   's' || (i % 500000), [$topics[i % len($topics) + 1]], 'bench',
                   ((i % 200) - 100) / 100.0
            FROM range({mentions}) t(i)
            """,
            {
                "sources": source_names,
                "topics": topic_names,
                "start": end - timedelta(days=365),
                "end": end,
            },
        )
        con.execute(
            """
            INSERT INTO mention_buckets
            SELECT time_bucket(INTERVAL 5 MINUTE, published_at), topic, platform,
                   coalesce(language, ''),
                   CASE WHEN sentiment <= -0.05 THEN 'negative' WHEN sentiment >= 0.05
                        THEN 'positive' ELSE 'neutral' END, count(*)
            FROM (SELECT *, unnest(topics) AS topic FROM mentions) GROUP BY ALL
            """
        )
        con.execute("CHECKPOINT")
    return time.perf_counter() - t0


def detection_pass(path: Path, topics: int) -> tuple[float, float, float]:
    """Seconds for the counts from the aggregates (Vigie), for the top stories of the window,
    and for the same counts computed from the raw mentions."""
    with open_warehouse(path) as con:
        store = Store(con)
        newest = con.execute("SELECT max(published_at) FROM mentions").fetchall()[0][0]
        end = bucket_ceiling(newest)
        t0 = time.perf_counter()
        for k in range(topics):
            store.window_counts(f"topic-{k}", end=end, window=WINDOW, windows=WINDOWS)
        aggregated = time.perf_counter() - t0
        t0 = time.perf_counter()
        for k in range(topics):
            store.top_mentions(f"topic-{k}", start=end - WINDOW, end=end)
        top = time.perf_counter() - t0
        start = end - WINDOW * WINDOWS
        t0 = time.perf_counter()
        for k in range(topics):
            con.execute(
                "SELECT floor((epoch(published_at) - epoch(?::TIMESTAMPTZ)) / 3600)::BIGINT, "
                "count(*) FROM mentions WHERE list_contains(topics, ?) AND published_at >= ? "
                "AND published_at < ? GROUP BY 1",
                [start, f"topic-{k}", start, end],
            ).fetchall()
            con.execute(
                "SELECT min(published_at) FROM mentions WHERE list_contains(topics, ?)",
                [f"topic-{k}"],
            ).fetchall()
        raw = time.perf_counter() - t0
    return aggregated, top, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=10_000_000)
    parser.add_argument("--topics", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        print(f"Warehouse benchmark: {args.mentions:,} mentions over a year, {args.topics} topics")
        built = build(path, args.mentions, args.topics)
        size = path.stat().st_size / 1e6
        print(f"  built in {built:.1f} s, file {size:.0f} MB")
        detection_pass(path, args.topics)  # warm the caches once
        runs = [detection_pass(path, args.topics) for _ in range(args.repeat)]
        aggregated = statistics.median(r[0] for r in runs)
        top = statistics.median(r[1] for r in runs)
        raw = statistics.median(r[2] for r in runs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  detection pass ({args.topics} topics, {WINDOWS} hourly windows + top stories), "
            f"median of {args.repeat}:"
        )
        print(f"    window counts from 5-minute aggregates (Vigie)  {aggregated * 1000:8.1f} ms")
        print(f"    top stories of the window (raw mentions)       {top * 1000:8.1f} ms")
        whole = (aggregated + top) * 1000
        print(f"    whole pass (the two above)                     {whole:8.1f} ms")
        print(f"    window counts from raw mentions (comparison)   {raw * 1000:8.1f} ms")
        print(f"  peak memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
