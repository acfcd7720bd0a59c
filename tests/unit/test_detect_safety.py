"""The volume detector is safe on any series: no exception, NaN or infinity, whatever the input
(constant, empty, huge, negative, sparse, gapped), and every public NAB series runs through it.

The NAB series live outside the repository (`../shared/bench/nab_public`, or the folder named
by `VIGIE_BENCH_DIR`); without them the test over every series is skipped.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from tasks.detect.series import read_series, score_series
from tasks.detect.volume import SeasonalSettings, assess_topic, seasonal_anomaly_scores
from vigie.settings import Detection

BENCH = Path(
    os.environ.get(
        "VIGIE_BENCH_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "bench"
    )
)
NAB = BENCH / "nab_public" / "data"
NAB_SERIES = sorted(NAB.glob("*/*.csv")) if NAB.is_dir() else []
needs_nab = pytest.mark.skipif(not NAB_SERIES, reason=f"no NAB series under {NAB}")

ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324, math.nan, math.inf]),
    st.integers(min_value=0, max_value=10**6).map(float),
)
DESIGNS = st.builds(
    SeasonalSettings,
    spans=st.sampled_from([(1,), (2,), (1, 6)]),
    tail_share=st.sampled_from([0.0, 0.005]),
    calm_buckets=st.integers(min_value=0, max_value=50),
    cusum_drift=st.sampled_from([0.0, 0.5, 1.0]),
    cusum_limit=st.sampled_from([0.0, 4.0, 8.0]),
    drops=st.booleans(),
)


def _safe(scores: list[float], length: int) -> None:
    assert len(scores) == length
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(ANY_FLOAT, max_size=300),
    period=st.integers(min_value=1, max_value=48),
    design=DESIGNS,
)
def test_any_series_scores_finite_values_in_0_1(
    values: list[float], period: int, design: SeasonalSettings
) -> None:
    _safe(seasonal_anomaly_scores(values, period=period, settings=design), len(values))


@settings(max_examples=60, deadline=None)
@given(
    level=st.one_of(st.floats(min_value=-1e300, max_value=1e300), st.just(0.0)),
    length=st.integers(min_value=0, max_value=400),
    period=st.integers(min_value=1, max_value=48),
    design=DESIGNS,
)
def test_a_constant_series_never_alerts(
    level: float, length: int, period: int, design: SeasonalSettings
) -> None:
    scores = seasonal_anomaly_scores([level] * length, period=period, settings=design)
    _safe(scores, length)
    assert all(s < 0.5 for s in scores)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(ANY_FLOAT, max_size=300),
    period=st.integers(min_value=1, max_value=48),
    drift=st.floats(min_value=0.0, max_value=5.0),
    limit=st.floats(min_value=1e-3, max_value=1e3),
)
def test_the_accumulated_evidence_is_finite_on_any_series(
    values: list[float], period: int, drift: float, limit: float
) -> None:
    """The slow-burn score (a CUSUM of the z) adds no NaN or infinity, whatever its settings."""
    design = SeasonalSettings(cusum_drift=drift, cusum_limit=limit)
    _safe(seasonal_anomaly_scores(values, period=period, settings=design), len(values))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=3), min_size=48, max_size=300),
    gaps=st.lists(st.booleans(), min_size=300, max_size=300),
    period=st.sampled_from([24, 48]),
)
def test_sparse_and_gapped_counts_score_safely(
    counts: list[int], gaps: list[bool], period: int
) -> None:
    values = [math.nan if gap else float(c) for c, gap in zip(counts, gaps, strict=False)]
    _safe(seasonal_anomaly_scores(values, period=period), len(values))


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=30, max_size=200),
    cut=st.integers(min_value=1, max_value=199),
    design=DESIGNS,
)
def test_a_score_never_depends_on_later_buckets(
    values: list[float], cut: int, design: SeasonalSettings
) -> None:
    cut = min(cut, len(values))
    full = seasonal_anomaly_scores(values, period=24, settings=design)
    prefix = seasonal_anomaly_scores(values[:cut], period=24, settings=design)
    assert prefix == pytest.approx(full[:cut])


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=10**9), min_size=0, max_size=169),
    coverage=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=169, max_size=169),
)
def test_the_live_assessment_of_any_counts_is_finite(
    counts: list[int], coverage: list[float]
) -> None:
    end = datetime(2026, 10, 5, tzinfo=UTC)
    assessment = assess_topic(
        "marque",
        counts,
        window_end=end,
        window=timedelta(hours=1),
        first_seen=end - timedelta(days=30),
        mentions=[],
        baseline_negative_share=0.2,
        detection=Detection(),
        coverage=coverage[: len(counts)],
    )
    assert math.isfinite(assessment.volume_score)
    assert 0.0 <= assessment.volume_score <= 1.0


def test_an_empty_series_has_no_scores() -> None:
    assert seasonal_anomaly_scores([], period=24) == []


def test_huge_values_do_not_overflow() -> None:
    """What crashed `vigie detect-series` (OverflowError in the score's sigmoid): bytes written
    per bucket, mostly zero with bursts of 1e8 and more."""
    rng = np.random.default_rng(3)
    values = np.where(rng.random(4000) < 0.9, 0.0, rng.uniform(1e7, 1e9, 4000)).tolist()
    scores = seasonal_anomaly_scores(values, period=288)
    _safe(scores, len(values))


@needs_nab
@pytest.mark.parametrize(
    "name",
    ["ec2_disk_write_bytes_1ef3de.csv", "ec2_disk_write_bytes_c0d644.csv"],
)
def test_detect_series_runs_on_the_series_that_crashed_it(name: str, tmp_path: Path) -> None:
    output = tmp_path / "scores.csv"
    assert main(["detect-series", str(NAB / "realAWSCloudwatch" / name), str(output)]) == 0
    rows = output.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "timestamp,anomaly_score"
    assert all(0.0 <= float(r.split(",")[1]) <= 1.0 for r in rows[1:])


@needs_nab
def test_every_public_nab_series_scores_safely() -> None:
    """All 53 public series, every category (a few seconds of CPU)."""
    assert len(NAB_SERIES) >= 53
    for path in NAB_SERIES:
        timestamps, values = read_series(path)
        _safe(score_series(timestamps, values), len(values))
