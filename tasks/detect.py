"""Detection: the volume of each watch topic in the current window against a trailing baseline.

The baseline is the median of the previous windows and its spread a robust one (scaled MAD),
floored by the Poisson spread sqrt(median) and by 1 so that a quiet topic does not alert on two
mentions: past spikes barely move a median, so they do not inflate the baseline. Windows are
aligned on `now` and only data up to `now` is used (causal). A topic seen for fewer than
`MIN_BASELINE_WINDOWS` windows has no baseline yet and cannot alert.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from tasks.signals import CRISIS_LEXICON, Severity, assess_severity
from vigie.models import VolumeSignal, WindowMention
from vigie.query import fold
from vigie.settings import Detection
from warehouse.store import Store

MIN_BASELINE_WINDOWS = 6
SMOOTHING_SPANS = (1, 6)  # windows averaged by the volume detector: a surge, a slow burn


@dataclass(frozen=True, slots=True)
class TopicAssessment:
    """Everything detection says about one topic in the current window."""

    signal: VolumeSignal
    volume_score: float
    severity: Severity
    # Share of the topic's usual volume whose sources were collected in this window; below
    # `health.min_coverage` the volume is not judged (a gap in collection is not calm).
    coverage: float = 1.0

    @property
    def alerting(self) -> bool:
        return self.severity.level in ("alerte", "crise")


BUCKET = timedelta(minutes=5)
# The cycle's clock is read before its fetches start: runs this close after a window's end
# are the ones judging it.
RUN_SLACK = timedelta(minutes=10)


def bucket_ceiling(moment: datetime) -> datetime:
    """The end of the 5-minute bucket holding `moment` (itself when already on a boundary).

    Windows end there, so the current window includes the bucket in progress: every mention
    collected up to now counts, and nothing later can (causal).
    """
    epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    buckets = -((moment - epoch) // -BUCKET)  # ceiling division
    return epoch + buckets * BUCKET


def robust_baseline(counts: Sequence[int]) -> tuple[float, float]:
    """Median and spread of past window counts; the spread is never below 1."""
    if not counts:
        return 0.0, 1.0
    median = float(statistics.median(counts))
    mad = float(statistics.median(abs(c - median) for c in counts))
    spread = max(1.4826 * mad, math.sqrt(median), 1.0)
    return median, spread


def assess_volume(
    topic: str,
    counts: Sequence[int],
    *,
    window_end: datetime,
    window: timedelta,
    first_seen: datetime | None,
    detection: Detection,
    gaps: Sequence[bool] = (),
) -> VolumeSignal:
    """Score the last window of `counts` (oldest first) against the windows before it.

    The score is in [0, 1]: 0.5 when the deviation equals `detection.threshold` spreads.
    `triggered` also needs at least `detection.min_mentions` mentions in the window. Windows
    flagged in `gaps` (collection was incomplete) are left out of the baseline.
    """
    window_start = window_end - window
    current = counts[-1] if counts else 0
    history = list(counts[:-1])
    if first_seen is not None:
        # Windows that ended before the topic was first seen are not evidence of calm.
        first_window_end = window_start - window * (len(history) - 1)
        skip = 0
        while skip < len(history) and first_window_end + window * skip <= first_seen:
            skip += 1
        history = history[skip:]
        if gaps:
            history = [c for c, gap in zip(history, gaps[skip:-1], strict=True) if not gap]
    if first_seen is None or len(history) < MIN_BASELINE_WINDOWS:
        return VolumeSignal(
            topic, window_start, window_end, current, 0.0, 1.0, 0.0, 0.0, False, has_baseline=False
        )
    median, spread = robust_baseline(history)
    z = (current - median) / spread
    score = 1.0 / (1.0 + math.exp(-(z - detection.threshold)))
    triggered = current >= detection.min_mentions and z >= detection.threshold
    return VolumeSignal(
        topic, window_start, window_end, current, median, spread, score, z, triggered
    )


def alert_reason(signal: VolumeSignal, severity: Severity | None = None) -> str:
    """One line saying why, kept with the alert (language-neutral figures)."""
    line = (
        f"volume: {signal.current} mentions in window vs median {signal.baseline_median:g} "
        f"(spread {signal.baseline_spread:.2f}, z={signal.z:.1f})"
    )
    if severity is not None:
        parts = ", ".join(f"{k} {v:g}" for k, v in severity.contributions.items() if v)
        line = f"severity {severity.score:g}/100 ({parts}); {line}"
    return line


@dataclass(frozen=True, slots=True)
class SeasonalSettings:
    """The volume detector's settings for a series of counts; the same for every series.

    Chosen on the NAB realTweets dev series (five companies) from ideas that hold for any mention
    counts, preferring a plateau over a peak: every setting can move by 20% and the scores change
    by a point or two (see `make bench` and the commit messages).
    """

    history_days: int = 7  # same time of day over the last week
    slot_tolerance: int = 2  # +/- buckets around the same time of day
    spread_slot_tolerance: int = 6  # +/- buckets for the time-of-day spread (30 min of 5 min)
    smoothing: int = 2  # mean of the last buckets, so one noisy bucket does not fire
    threshold: float = 4.0  # robust z at which the score is 0.5
    gain: float = 1.5  # slope of the score around the threshold
    tail_share: float = 0.005  # the threshold rises to the z exceeded by this share of the
    # past `history_days` (0.5%: about 50 minutes of a week of 5-minute buckets); 0 disables
    spread_floor: float = 0.05  # in log1p units; keeps a flat history from dividing by zero
    refractory_days: float = 1.0  # after a score >= 0.5, scores are damped at least this long
    event_buckets: int = 36  # ... and until the mean of this many buckets (3 h) has stayed
    calm_z: float = 1.0  # below this robust z for as long: the event is over
    level_buckets: int = 12  # fallback before a day of history: the recent median


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    shifted = np.full(values.shape, np.nan)
    if 0 < lag < len(values):
        shifted[lag:] = values[: len(values) - lag]
    return shifted


def _same_time_median(values: np.ndarray, *, period: int, days: int, tolerance: int) -> np.ndarray:
    """Median of `values` at the same time of day (+/- `tolerance` buckets) over the past days."""
    lags = [
        day * period + offset
        for day in range(1, days + 1)
        for offset in range(-tolerance, tolerance + 1)
        if day * period + offset > 0
    ]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices before a day of data
        median: np.ndarray = np.nanmedian(np.vstack([_lagged(values, lag) for lag in lags]), axis=0)
    return median


def _robust_z(
    logged: np.ndarray, *, period: int, smoothing: int, settings: SeasonalSettings
) -> np.ndarray:
    """Residual of the smoothed log counts against the same time of day, in robust spreads.

    The spread is the larger of the week's scaled MAD and the MAD at this time of day: log counts
    are noisier when counts are low (nights, weekends), and one spread for the whole day would
    make every quiet hour look like a burst. NaN before a day of history.
    """
    import pandas as pd

    smoothed = pd.Series(logged).rolling(smoothing, min_periods=1).mean().to_numpy()
    seasonal = _same_time_median(
        smoothed, period=period, days=settings.history_days, tolerance=settings.slot_tolerance
    )
    recent = (
        pd.Series(smoothed).shift(1).rolling(settings.level_buckets, min_periods=1).median()
    ).to_numpy()
    expected = np.where(np.isnan(seasonal), recent, seasonal)
    residual = smoothed - expected
    deviation = np.abs(residual)
    overall = (
        pd.Series(deviation)
        .shift(1)
        .rolling(settings.history_days * period, min_periods=period)
        .median()
        .to_numpy()
    )
    at_this_time = _same_time_median(
        deviation,
        period=period,
        days=settings.history_days,
        tolerance=settings.spread_slot_tolerance,
    )
    spread = 1.4826 * np.fmax(overall, at_this_time) + settings.spread_floor
    # np.fmax keeps the overall spread where the time of day has no history yet; NaN stays
    # NaN before a day of data.
    spread = np.where(np.isnan(overall), np.nan, spread)
    z: np.ndarray = residual / spread
    return z


def seasonal_anomaly_scores(
    counts: Sequence[float], *, period: int, settings: SeasonalSettings | None = None
) -> list[float]:
    """Anomaly score in [0, 1] for each bucket of a count series, computed causally.

    Counts are compared in log space with what the same time of day looked like over the past
    `history_days` (the median, which past spikes barely move), in units of the robust spread
    of past residuals (see `_robust_z`). The score is 0.5 at `threshold`, or higher when the
    series often bursts (`_adaptive_threshold`); 0.5 or more means Vigie would alert there;
    after that, scores are damped so that one event is one alert: for at least
    `refractory_days`, and until the volume is back near its usual level (`_calm`). The score
    at bucket t uses only buckets up to t.

    Args:
        counts: mentions per bucket, oldest first, regular buckets without gaps.
        period: buckets per day (288 for 5-minute buckets, 24 for hourly).
    """
    settings = settings or SeasonalSettings()
    if period < 1:
        raise ValueError("period must be at least one bucket per day")
    logged = np.log1p(np.maximum(np.asarray(counts, dtype=float), 0.0))
    z = _robust_z(logged, period=period, smoothing=settings.smoothing, settings=settings)
    threshold = _adaptive_threshold(z, period=period, settings=settings)
    calm = _calm(logged, period=period, settings=settings)
    refractory = int(settings.refractory_days * period)
    scores: list[float] = []
    last_alert: int | None = None
    for index, value in enumerate(z):
        if math.isnan(value):
            scores.append(0.0)
            continue
        if last_alert is not None and index - last_alert >= refractory and calm[index]:
            last_alert = None  # the event is over: the next burst is a new one
        score = 1.0 / (1.0 + math.exp(-settings.gain * (float(value) - threshold[index])))
        if last_alert is not None:
            score *= 0.1
        elif score >= 0.5 and refractory > 0:
            last_alert = index
        scores.append(score)
    return scores


def _adaptive_threshold(z: np.ndarray, *, period: int, settings: SeasonalSettings) -> np.ndarray:
    """`settings.threshold`, raised to the z that only `tail_share` of the past week exceeded.

    A series that often bursts (a ticker that spam campaigns hit several times a week) then
    needs more than its usual bursts to alert, while a quiet series keeps the fixed threshold.
    """
    import pandas as pd

    fixed = np.full(len(z), settings.threshold)
    if settings.tail_share <= 0:
        return fixed
    tail = (
        pd.Series(z)
        .shift(1)
        .rolling(settings.history_days * period, min_periods=period)
        .quantile(1.0 - settings.tail_share)
        .to_numpy()
    )
    threshold: np.ndarray = np.fmax(fixed, tail)
    return threshold


def _calm(logged: np.ndarray, *, period: int, settings: SeasonalSettings) -> np.ndarray:
    """Whether the series has been back near its usual level for the last `event_buckets`.

    An event is over only then: a burst that rises again after a day of still-high volume is
    the same event, not a new alert. Measured on `event_buckets`-bucket means, so isolated
    noisy buckets neither prolong nor end it.
    """
    import pandas as pd

    level = _robust_z(logged, period=period, smoothing=settings.event_buckets, settings=settings)
    above = pd.Series(np.nan_to_num(level, nan=0.0) >= settings.calm_z, dtype=float)
    recent_high = above.rolling(settings.event_buckets, min_periods=1).max().to_numpy()
    calm: np.ndarray = recent_high == 0.0
    return calm


def window_coverage(
    covered: Mapping[int, float],
    *,
    end: datetime,
    window: timedelta,
    windows: int,
    first_run: datetime | None,
) -> list[float]:
    """Share of a topic's usual volume whose sources were collected, for each window.

    Args:
        covered: for each window index (0 the oldest), the summed shares of the topic's
            volume of the sources fetched in it (`Store.covered_shares`).
        first_run: the first fetch ever recorded; windows before it are not judged (1.0),
            so history loaded from elsewhere is not read as a gap.
    """
    start = end - window * windows
    coverage = []
    for index in range(windows):
        window_end = start + window * (index + 1)
        if first_run is None or window_end <= first_run:
            coverage.append(1.0)
        else:
            coverage.append(min(1.0, covered.get(index, 0.0)))
    return coverage


def assess_topic(
    topic: str,
    counts: Sequence[int],
    *,
    window_end: datetime,
    window: timedelta,
    first_seen: datetime | None,
    mentions: Sequence[WindowMention],
    baseline_negative_share: float,
    detection: Detection,
    coverage: Sequence[float] = (),
    min_coverage: float = 0.5,
) -> TopicAssessment:
    """Volume (seasonal detector over the window counts) and the other signals of one topic.

    The volume score is the seasonal detector's score of the last window; it counts only when
    the topic has a baseline (`MIN_BASELINE_WINDOWS` windows since it was first seen), the
    window holds at least `detection.min_mentions` mentions, and collection covered at least
    `min_coverage` of the topic's usual sources in it. `coverage` (one share per window of
    `counts`) also keeps windows where collection was down out of the baseline.
    """
    gaps = [share < min_coverage for share in coverage] if coverage else []
    current_coverage = coverage[-1] if coverage else 1.0
    signal = assess_volume(
        topic,
        counts,
        window_end=window_end,
        window=window,
        first_seen=first_seen,
        detection=detection,
        gaps=gaps,
    )
    per_day = max(1, round(timedelta(days=1) / window))
    volume_score = 0.0
    if signal.has_baseline and counts and current_coverage >= min_coverage:
        masked = [
            math.nan if gaps and gaps[index] else float(count) for index, count in enumerate(counts)
        ]
        # The last window alone sees a sudden surge; the mean of the last few (in log space)
        # sees a slow burn whose hours are each within the noise. No refractory period and no
        # adaptive threshold: the alert lifecycle keeps one alert per topic, and the tail of a
        # week of hourly windows would be its single largest one.
        volume_score = max(
            seasonal_anomaly_scores(
                masked,
                period=per_day,
                settings=SeasonalSettings(
                    threshold=detection.threshold,
                    refractory_days=0,
                    smoothing=span,
                    tail_share=0.0,
                ),
            )[-1]
            for span in SMOOTHING_SPANS
        )
    enough = signal.current >= detection.min_mentions
    lexicon = {**CRISIS_LEXICON, **{fold(k): v for k, v in detection.vocabulary.items()}}
    severity = assess_severity(
        mentions,
        volume_score=volume_score if enough else 0.0,
        enough_volume=enough,
        baseline_negative_share=baseline_negative_share,
        sensitivity=detection.sensitivity,
        lexicon=lexicon,
        window_hours=window / timedelta(hours=1),
    )
    return TopicAssessment(signal, volume_score, severity, current_coverage)


def assess_watches(
    store: Store,
    topics: Sequence[str],
    detection: Detection,
    now: datetime,
    *,
    sources: Sequence[str] = (),
    min_coverage: float = 0.5,
) -> list[TopicAssessment]:
    """Assess each topic's window ending at the 5-minute boundary after `now`, from the
    warehouse (aggregates for volume, raw mentions for the other signals).

    With the configured `sources`, each window's collection coverage is read from
    `source_runs`, so windows where the topic's sources were down are not read as calm.
    """
    window = timedelta(minutes=detection.window_minutes)
    end = bucket_ceiling(now)
    start = end - window
    baseline_start = end - window * (detection.baseline_windows + 1)
    windows = detection.baseline_windows + 1
    first_run = store.first_collection_run() if sources else None
    assessments = []
    for topic in topics:
        coverage: list[float] = []
        if sources:
            shares = store.topic_source_shares(
                topic, start=baseline_start, end=end, sources=sources
            )
            # A fetch that began just after `end` belongs to the cycle judging that window.
            covered = store.covered_shares(
                shares, start=baseline_start, window=window, windows=windows, until=end + RUN_SLACK
            )
            coverage = window_coverage(
                covered, end=end, window=window, windows=windows, first_run=first_run
            )
        counts, first_seen = store.window_counts(
            topic, end=end, window=window, windows=detection.baseline_windows + 1
        )
        mentions, backfill = store.window_mentions(topic, start=start, end=end)
        counts[-1] = max(0, counts[-1] - backfill)
        assessments.append(
            assess_topic(
                topic,
                counts,
                window_end=end,
                window=window,
                first_seen=first_seen,
                mentions=mentions,
                baseline_negative_share=store.negative_share(
                    topic, start=baseline_start, end=start
                ),
                detection=detection,
                coverage=coverage,
                min_coverage=min_coverage,
            )
        )
    return assessments
