"""The NAB prototype's building blocks (bench/nab_candidates.py) compute what they say, so
the held-out figures reported for its candidates describe the design the note describes."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import nab_candidates
from bench_nab_cv import NabSeries


def _nearest_past_window(
    values: np.ndarray, end: int, *, length: int, horizon: int, drops: bool
) -> float:
    """The brute-force oracle: every earlier window within the horizon, one by one."""
    window = values[end - length + 1 : end + 1]
    best = math.inf
    for lag in range(length, min(horizon, len(values))):
        start = end - lag - length + 1
        if start < 0:
            break
        difference = window - values[start : start + length]
        if not drops:
            difference = np.maximum(difference, 0.0)
        best = min(best, float(np.sqrt(np.sum(difference * difference))))
    return best


@pytest.mark.parametrize("drops", [False, True], ids=["rises only", "both ways"])
def test_the_discord_distance_is_the_distance_to_the_nearest_earlier_window(drops: bool) -> None:
    values = np.random.default_rng(3).normal(size=160)
    distance = nab_candidates._discord_distance(values, length=4, horizon=40, drops=drops)
    for end in (7, 50, 120, 159):
        expected = _nearest_past_window(values, end, length=4, horizon=40, drops=drops)
        assert distance[end] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert np.isnan(distance[: 4 + 4 - 1]).all()  # no earlier window yet


def test_a_burst_is_detected_and_nothing_is_before_the_likelihood_has_learned() -> None:
    """No score before `learning` rows of averaged raw scores (the floors of the Gaussian
    once replaced the missing history, and the first rows of every series scored as bursts)."""
    rng = np.random.default_rng(5)
    values = [float(v) for v in rng.poisson(20, size=3000)]
    for row in range(2500, 2512):
        values[row] += 200.0
    series = NabSeries("synthetic", [], values, 288, nab_candidates.timedelta(minutes=5))
    scores = nab_candidates.scores_of(series, nab_candidates.WITH_LONG_AVERAGE)
    assert scores[2500:2512].max() >= 0.5
    assert (scores[:300] == 0.0).all()


@pytest.mark.parametrize(
    "values",
    [
        [],
        [0.0] * 500,
        [7.0] * 500,
        [1e308, -1e308, 0.0] * 200,
        [math.nan] * 100 + [3.0, math.inf] * 200,
    ],
    ids=["empty", "zeros", "constant", "huge", "gapped"],
)
def test_the_chosen_candidate_scores_finite_values_in_0_1(values: list[float]) -> None:
    series = NabSeries("degenerate", [], values, 288, nab_candidates.timedelta(minutes=5))
    scores = nab_candidates.scores_of(series, nab_candidates.WITH_LONG_AVERAGE)
    assert len(scores) == len(values)
    assert np.isfinite(scores).all()
    assert ((scores >= 0.0) & (scores <= 1.0)).all()
