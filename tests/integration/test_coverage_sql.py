"""Collection coverage is summed in the warehouse (`Store.covered_shares`) exactly as the Python
bucketing it replaced did, kept here as the oracle: random runs of 30 sources over a week, in
windows of several sizes, with errors and a drill's runs that must not count."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warehouse.connection import open_warehouse
from warehouse.store import Store

END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SLACK = timedelta(minutes=10)


def oracle_covered(
    runs: Sequence[tuple[str, datetime]],
    weights: Mapping[str, float],
    *,
    start: datetime,
    window: timedelta,
    windows: int,
    until: datetime,
) -> dict[int, float]:
    seen: list[set[str]] = [set() for _ in range(windows)]
    for source, moment in runs:
        if start <= moment < until:
            seen[min(int((moment - start) / window), windows - 1)].add(source)
    return {i: sum(weights.get(s, 0.0) for s in found) for i, found in enumerate(seen) if found}


@pytest.mark.parametrize("window_minutes", [5, 60, 1440])
def test_covered_shares_are_the_python_bucketing(tmp_path: Path, window_minutes: int) -> None:
    rng = random.Random(window_minutes)
    sources = [f"source-{n}" for n in range(30)]
    weights = {s: rng.random() / 10 for s in sources[:25]}  # five sources outside the topic
    window = timedelta(minutes=window_minutes)
    windows = max(2, int(timedelta(days=7) / window) // 2)
    start = END - window * windows
    ok: list[tuple[str, datetime]] = []
    with open_warehouse(tmp_path / "vigie.duckdb") as con:
        con.execute(
            "INSERT INTO sources (name, kind, url, platform, tier, drill) "
            "VALUES ('exercice', 'rss', 'http://127.0.0.1/x', 'news', 2, true)"
        )
        for n in range(3000):
            source = rng.choice([*sources, "exercice"])
            # Some before the start, some in the slack after the end, some after it.
            moment = start + (END + 2 * SLACK - start) * rng.random() - window * rng.random()
            status = rng.choice(["ok", "not_modified", "error"])
            con.execute(
                "INSERT INTO source_runs (cycle_id, source, started_at, duration_s, status) "
                "VALUES (?, ?, ?, 0.1, ?)",
                [f"c{n}", source, moment, status],
            )
            if status != "error" and source != "exercice":
                ok.append((source, moment))
        covered = Store(con).covered_shares(
            {**weights, "exercice": 1.0},
            start=start,
            window=window,
            windows=windows,
            until=END + SLACK,
        )
    expected = oracle_covered(
        ok, weights, start=start, window=window, windows=windows, until=END + SLACK
    )
    # A window seen only by sources outside the topic is absent from one, 0.0 in the other.
    assert [covered.get(i, 0.0) for i in range(windows)] == pytest.approx(
        [expected.get(i, 0.0) for i in range(windows)], abs=1e-12
    )
    assert len(covered) > windows // 2  # most windows saw a run: the comparison means something
