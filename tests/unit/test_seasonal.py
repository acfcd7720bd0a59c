"""The seasonal volume detector on synthetic series: causal, seasonal, one alert per event.

`LIFECYCLE` damps the scores while an alert would stay open (six hourly buckets without a
trigger resolve it), as `vigie detect-series` does with `calm_minutes`."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from tasks.detect.volume import SeasonalSettings, seasonal_anomaly_scores, volume_settings
from vigie.settings import Detection

PERIOD = 24  # hourly buckets
LIFECYCLE = SeasonalSettings(calm_buckets=6)


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
    scores = seasonal_anomaly_scores(series, period=PERIOD, settings=LIFECYCLE)
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


def test_appending_future_data_leaves_past_scores_unchanged() -> None:
    """Causality with every part of the detector at work: a burst, its event and a second one."""
    series = _daily_wave(12, seed=3)
    for hour in range(8 * PERIOD + 2, 8 * PERIOD + 6):
        series[hour] = 400.0
    series[10 * PERIOD + 3] = 500.0
    full = seasonal_anomaly_scores(series, period=PERIOD, settings=LIFECYCLE)
    for cut in (3 * PERIOD, 8 * PERIOD + 3, 9 * PERIOD + 20, 11 * PERIOD + 1):
        prefix = seasonal_anomaly_scores(series[: cut + 1], period=PERIOD, settings=LIFECYCLE)
        assert prefix == pytest.approx(full[: cut + 1])


def test_flat_and_noisy_series_never_alert() -> None:
    flat = seasonal_anomaly_scores([10.0] * (10 * PERIOD), period=PERIOD)
    rng = np.random.default_rng(7)
    noisy = seasonal_anomaly_scores([float(v) for v in rng.poisson(30, 10 * PERIOD)], period=PERIOD)
    assert max(flat) < 0.5
    assert max(noisy) < 0.5


def test_quiet_hours_are_judged_by_their_own_noise() -> None:
    """A few mentions more in a quiet, irregular night are not a burst (with a few days of
    history: the noise of each time of day is learnt from the past days). Judged on the mean
    of two buckets: the last bucket alone (the default's first span) sees 4 mentions in a
    night of 1.5 as a burst, which live detection leaves out below `min_mentions` (5)."""
    rng = np.random.default_rng(5)
    hours = np.arange(14 * PERIOD)
    night = (hours % PERIOD) < 6
    series = [
        float(v)
        for v in np.where(night, rng.poisson(1.5, len(hours)), rng.poisson(200, len(hours)))
    ]
    scores = seasonal_anomaly_scores(series, period=PERIOD, settings=SeasonalSettings(spans=(2,)))
    assert max(scores[4 * PERIOD :]) < 0.5


def test_the_event_lasts_while_volume_stays_high() -> None:
    """A second burst a day later, with the volume still high in between, is the same event:
    the alert stays open while the volume keeps triggering."""
    series = _daily_wave(14)
    start = 8 * PERIOD + 3
    for hour in range(start + 1, start + 2 * PERIOD):
        series[hour] = series[hour] * 3 + 60
    series[start] = 600.0
    series[start + PERIOD + 4] = 900.0
    scores = seasonal_anomaly_scores(series, period=PERIOD, settings=LIFECYCLE)
    assert scores[start] >= 0.5
    assert max(scores[start + 1 : start + 2 * PERIOD]) < 0.5


def test_a_burst_after_the_calm_returns_alerts_again() -> None:
    series = _daily_wave(14)
    first, second = 6 * PERIOD + 3, 8 * PERIOD + 2
    series[first] = series[second] = 500.0
    scores = seasonal_anomaly_scores(series, period=PERIOD, settings=LIFECYCLE)
    assert scores[first] >= 0.5 and scores[second] >= 0.5


def test_a_series_that_often_bursts_needs_more_to_alert() -> None:
    """The adaptive threshold: the usual size of burst of a spiky series stops alerting."""
    series = _daily_wave(14)
    for day in range(2, 13):
        series[day * PERIOD + 2] = 300.0  # a burst every night
    series[13 * PERIOD + 2] = 300.0
    # Without the alert lifecycle and on one span, to compare the thresholds alone.
    adaptive = seasonal_anomaly_scores(
        series, period=PERIOD, settings=SeasonalSettings(spans=(2,), tail_share=0.005)
    )
    fixed = seasonal_anomaly_scores(
        series, period=PERIOD, settings=SeasonalSettings(spans=(2,), tail_share=0)
    )
    nights = [day * PERIOD + 2 for day in range(5, 14)]
    assert sum(adaptive[i] >= 0.5 for i in nights) < sum(fixed[i] >= 0.5 for i in nights)
    assert adaptive[13 * PERIOD + 2] < fixed[13 * PERIOD + 2]


def test_before_three_past_days_a_bucket_is_judged_against_the_recent_level() -> None:
    # A daily sawtooth of 5-minute buckets (a step every 2.5 hours, down at midnight): the
    # median of one or two days at the same time of day takes its ordinary steps for bursts;
    # the recent level (the warm-up) does not, and still sees a real burst on day two.
    period = 288
    series = [20.0 + (i % period) // 30 for i in range(10 * period)]
    burst = period + 100
    series[burst] = 400.0
    live = volume_settings(Detection(), bucket=timedelta(minutes=5))  # as detect-series
    scores = seasonal_anomaly_scores(series, period=period, settings=live)
    assert [i for i, s in enumerate(scores) if s >= 0.5] == [burst]
    unwarmed = replace(live, warmup_days=0)
    steps = seasonal_anomaly_scores(series, period=period, settings=unwarmed)
    assert [i for i, s in enumerate(steps) if s >= 0.5 and i != burst]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_lift_each_hour_of_which_stays_in_the_noise_is_caught_by_the_accumulated_evidence(
    seed: int,
) -> None:
    # Twelve hours at 1.7 times the usual 20 mentions: no hour alone reaches the threshold,
    # their accumulated evidence (the CUSUM of the live settings) does within 12 hours.
    rng = np.random.default_rng(seed)
    series = rng.poisson(20, 10 * PERIOD).astype(float)
    onset = 9 * PERIOD
    series[onset : onset + 12] = rng.poisson(20 * 1.7, 12)
    each_hour = replace(volume_settings(Detection()), spans=(1,))
    scores = seasonal_anomaly_scores(series.tolist(), period=PERIOD, settings=each_hour)
    assert max(scores[2 * PERIOD : onset]) < 0.5
    assert max(scores[onset : onset + 12]) >= 0.5
    alone = seasonal_anomaly_scores(
        series.tolist(), period=PERIOD, settings=replace(each_hour, cusum_limit=0.0)
    )
    assert max(alone[onset:]) < 0.5
