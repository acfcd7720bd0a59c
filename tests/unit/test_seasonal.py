"""The seasonal volume detector on synthetic series: causal, seasonal, one alert per event."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.detect import SeasonalSettings, seasonal_anomaly_scores

PERIOD = 24  # hourly buckets


def _daily_wave(days: int, seed: int = 1) -> list[float]:
    """Counts with a strong daily cycle (quiet nights, busy afternoons) and Poisson noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * PERIOD)
    rate = 20 + 60 * np.clip(np.sin((hours % PERIOD - 6) / PERIOD * 2 * math.pi), 0, None)
    return [float(v) for v in rng.poisson(rate)]


def test_scores_are_in_0_1_and_as_long_as_the_series() -> None:
    series = _daily_wave(10)
    scores = seasonal_anomaly_scores(series, period=PERIOD)
    assert len(scores) == len(series)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_the_daily_peak_is_not_an_anomaly() -> None:
    scores = seasonal_anomaly_scores(_daily_wave(14), period=PERIOD)
    assert max(scores[2 * PERIOD :]) < 0.5


def test_a_burst_at_night_is_an_anomaly() -> None:
    series = _daily_wave(10)
    night = 9 * PERIOD + 2
    series[night] = 400.0
    scores = seasonal_anomaly_scores(series, period=PERIOD)
    assert scores[night] >= 0.5
    assert max(scores[2 * PERIOD : night]) < 0.5


def test_the_score_at_t_does_not_depend_on_what_comes_after() -> None:
    series = _daily_wave(10)
    full = seasonal_anomaly_scores(series, period=PERIOD)
    cut = 8 * PERIOD + 5
    prefix = seasonal_anomaly_scores(series[: cut + 1], period=PERIOD)
    assert prefix == pytest.approx(full[: cut + 1])


def test_a_long_event_gives_one_alert_then_damped_scores() -> None:
    series = _daily_wave(10)
    start = 8 * PERIOD + 3
    for hour in range(start, start + 6):
        series[hour] = 500.0
    scores = seasonal_anomaly_scores(series, period=PERIOD)
    alerts = [i for i, s in enumerate(scores) if s >= 0.5]
    assert alerts == [start]


def test_a_past_spike_does_not_hide_the_next_one() -> None:
    """The median baseline ignores an old spike, so a similar one a few days later still fires."""
    series = _daily_wave(12)
    first, second = 5 * PERIOD + 3, 9 * PERIOD + 3
    series[first] = series[second] = 400.0
    scores = seasonal_anomaly_scores(series, period=PERIOD)
    assert scores[first] >= 0.5 and scores[second] >= 0.5


def test_settings_change_the_sensitivity() -> None:
    series = _daily_wave(10)
    series[9 * PERIOD + 2] = 90.0
    default = seasonal_anomaly_scores(series, period=PERIOD)[9 * PERIOD + 2]
    strict = seasonal_anomaly_scores(
        series, period=PERIOD, settings=SeasonalSettings(threshold=8.0)
    )[9 * PERIOD + 2]
    assert strict < default
