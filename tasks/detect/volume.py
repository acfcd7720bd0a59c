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

from tasks.detect.signals import CRISIS_LEXICON, Severity, assess_severity
from vigie.models import VolumeSignal, WindowMention
from vigie.query import fold
from vigie.settings import Detection
from warehouse.store import Store

MIN_BASELINE_WINDOWS = 6


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
    """The volume detector's settings; the same for every series, live and benchmarked.

    Chosen by cross-validation on the 53 public NAB series, leaving out whole categories
    (`bench/bench_nab_cv.py`), never per series. Spans and event lengths are in buckets of
    the series (an hour live, five minutes on NAB).
    """

    history_days: int = 7  # same time of day over the last week
    slot_tolerance: int = 2  # +/- buckets around the same time of day
    spread_slot_tolerance: int = 6  # +/- buckets for the time-of-day spread
    # Means of the last buckets, each judged against its own past (the highest z counts): the
    # last bucket sees a sudden surge, the mean of several a slow burn whose buckets each
    # stay within the noise.
    spans: tuple[int, ...] = (1, 6)
    threshold: float = 4.0  # robust z at which the score is 0.5
    gain: float = 1.5  # slope of the score around the threshold
    tail_share: float = 0.005  # the threshold rises to the z exceeded by this share of the
    # past `history_days` (about 50 minutes of a week of 5-minute buckets); 0 disables
    spread_floor: float = 0.05  # in log1p units; keeps a flat history from dividing by zero
    level_buckets: int = 12  # fallback before a day of history: the recent median
    # Warm-up (like NAB's probationary period): until its time of day has values on this many
    # past days, a bucket must also stand out from the recent level (`level_buckets`), since
    # a median of one or two days takes an ordinary daily step for a burst. 0 disables.
    warmup_days: int = 3
    # The alert lifecycle over a whole series: after a score >= 0.5 opens an alert, scores are
    # damped until `calm_buckets` have passed without one (`Detection.calm_minutes` in
    # buckets). 0 leaves the scores as they are: the live cycle keeps its open alerts itself.
    calm_buckets: int = 0
    # Accumulated evidence for a slow burn whose buckets each stay inside the noise: a
    # one-sided CUSUM of the shortest span's z, S = max(0, S + (min(z, threshold) - drift)
    # * bucket_hours), counts as the z `threshold * S / cusum_limit` (0.5 when S reaches the
    # limit). Each z is capped at the threshold (one burst is the last bucket's job, not
    # evidence that lingers), and S at twice the limit (a level that stays up must not keep
    # it high for long after). Drift and limit are per hour, so that a burn takes the same
    # time on any bucket size. Chosen by cross-validation (`bench/bench_nab_cv.py`) among
    # settings that catch the slow-burn scenario within 12 hours. A limit of 0 disables it.
    cusum_drift: float = 1.0
    cusum_limit: float = 4.0
    bucket_hours: float = 1.0  # the length of a bucket (live: a window)
    drops: bool = False  # also score falls (benchmarks only: a fall in mentions is no crisis)


def volume_settings(detection: Detection, *, bucket: timedelta | None = None) -> SeasonalSettings:
    """The volume detector's settings for `detection`: the live cycle, `vigie replay`,
    `vigie detect-series` and the benchmarks all take them from here.

    With `bucket` (the series' step), scores after an alert opens are damped as the alert
    lifecycle would (`calm_minutes` without a score >= 0.5 resolves it), so that a whole
    series scores what would have alerted; without it (live), the lifecycle does it.
    """
    calm = 0
    step = timedelta(minutes=detection.window_minutes)  # live: one window per bucket
    if bucket is not None and bucket > timedelta(0):
        calm = max(1, math.ceil(timedelta(minutes=detection.calm_minutes) / bucket))
        step = bucket
    return SeasonalSettings(
        threshold=detection.threshold, calm_buckets=calm, bucket_hours=step / timedelta(hours=1)
    )


# Damping of the scores inside an event, after its first detection: below any threshold NAB's
# scorer would pick, and still ordered by strength.
EVENT_DAMPING = 0.1


def _row_nanmedian(matrix: np.ndarray) -> np.ndarray:
    """Median of each row ignoring NaN (NaN where a row has none): a sort of short rows,
    much faster than `np.nanmedian` on the same array."""
    ordered = np.sort(matrix, axis=1)  # NaN sorts last
    present = np.sum(~np.isnan(matrix), axis=1)
    low = np.clip((present - 1) // 2, 0, None)
    high = np.clip(present // 2, 0, matrix.shape[1] - 1)
    rows = np.arange(len(matrix))
    median: np.ndarray = np.where(
        present > 0, (ordered[rows, low] + ordered[rows, high]) / 2.0, np.nan
    )
    return median


def _same_time_median(values: np.ndarray, *, period: int, days: int, tolerance: int) -> np.ndarray:
    """Median of `values` at the same time of day (+/- `tolerance` buckets) over the past days."""
    lags = sorted(
        {
            day * period + offset
            for day in range(1, days + 1)
            for offset in range(-tolerance, tolerance + 1)
            if 0 < day * period + offset < len(values)
        }
    )
    if not lags:
        return np.full(values.shape, np.nan)
    longest = lags[-1]
    padded = np.concatenate((np.full(longest, np.nan), values))
    size = len(values)
    lagged = np.stack([padded[longest - lag : longest - lag + size] for lag in lags], axis=1)
    return _row_nanmedian(lagged)


def _same_time_days(values: np.ndarray, *, period: int, days: int) -> np.ndarray:
    """For each bucket, on how many of the past `days` the same time of day holds a value."""
    present = ~np.isnan(values)
    counted = np.zeros(len(values), dtype=int)
    for day in range(1, days + 1):
        lag = day * period
        if lag < len(values):
            counted[lag:] += present[:-lag]
    return counted


def signed_log(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """log1p of the magnitude with its sign; NaN where a value is missing or not finite.

    Counts compare in log space (a burst is a ratio, and noise grows with the level); the sign
    keeps any other series (temperatures, balances) readable, and the log keeps huge values
    (bytes written, 1e300) finite in every later step.
    """
    array = np.asarray(values, dtype=float)
    with np.errstate(all="ignore"):
        logged: np.ndarray = np.sign(array) * np.log1p(np.abs(array))
    logged[~np.isfinite(logged)] = np.nan
    return logged


def _robust_z(
    logged: np.ndarray, *, period: int, smoothing: int, settings: SeasonalSettings
) -> np.ndarray:
    """Residual of the smoothed log values against the same time of day, in robust spreads.

    The spread is the larger of the week's scaled MAD and the MAD at this time of day: log counts
    are noisier when counts are low (nights, weekends), and one spread for the whole day would
    make every quiet hour look like a burst. NaN before a day of history and where the bucket
    and its smoothing span hold no value.
    """
    import pandas as pd

    smoothed = pd.Series(logged).rolling(max(1, smoothing), min_periods=1).mean().to_numpy()
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
    if settings.warmup_days > 0:
        # Too few days at this time of day for their median alone (the warm-up): a bucket must
        # also stand out from the recent level, in the week's spread, the same way. A median of
        # one or two days takes a daily step for a burst, the recent level takes the daily peak
        # for one; a real burst stands out from both.
        days_seen = _same_time_days(logged, period=period, days=settings.history_days)
        level_z = (smoothed - recent) / (1.4826 * overall + settings.spread_floor)
        nearer = np.where(np.abs(z) <= np.abs(level_z), z, level_z)
        both = np.where(np.sign(z) == np.sign(level_z), nearer, 0.0)
        both = np.where(np.isnan(level_z), z, both)
        z = np.where(days_seen < settings.warmup_days, both, z)
    return z


def _multi_scale_z(
    logged: np.ndarray, *, period: int, settings: SeasonalSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The highest robust z over the smoothing spans (of |z| with `drops`; NaN where no span
    has a baseline yet), and the accumulated evidence as a z (`_cusum_z`; NaN when off)."""
    spans = settings.spans or (1,)
    stacked = np.vstack(
        [_robust_z(logged, period=period, smoothing=span, settings=settings) for span in spans]
    )
    if settings.drops:
        stacked = np.abs(stacked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns before a day of data
        highest: np.ndarray = np.nanmax(stacked, axis=0)
    if settings.cusum_limit <= 0:
        return highest, np.full(len(highest), np.nan)
    return highest, _cusum_z(stacked[0], settings)


def _cusum_z(z: np.ndarray, settings: SeasonalSettings) -> np.ndarray:
    """The one-sided CUSUM of `z` (see `SeasonalSettings.cusum_drift`) as a z: `threshold`
    when it reaches `cusum_limit`. A NaN z (no baseline, a gap) leaves the sum as it was, and
    its bucket is NaN."""
    capped = (np.minimum(z, settings.threshold) - settings.cusum_drift) * settings.bucket_hours
    accumulated = np.full(len(z), np.nan)
    total, ceiling = 0.0, 2.0 * settings.cusum_limit
    for index, step in enumerate(capped.tolist()):
        if step == step:  # not NaN
            total = min(ceiling, max(0.0, total + step))
            accumulated[index] = total
    scaled: np.ndarray = settings.threshold * accumulated / settings.cusum_limit
    return scaled


def _sigmoid(values: np.ndarray) -> np.ndarray:
    # Clipped so that exp never overflows, whatever z a degenerate series produces.
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(values, -500.0, 500.0)))
    return result


def seasonal_anomaly_scores(
    counts: Sequence[float], *, period: int, settings: SeasonalSettings | None = None
) -> list[float]:
    """Anomaly score in [0, 1] for each bucket of a series, computed causally.

    Values are compared in log space with what the same time of day looked like over the past
    `history_days` (the median, which past spikes barely move), in units of the robust spread
    of past residuals (see `_robust_z`), for each smoothing span (`spans`; the highest counts).
    The accumulated evidence of a slow burn (`cusum_limit`) counts as one more z. The score
    is 0.5 at `threshold`, or higher when the series often bursts (`_adaptive_threshold`);
    0.5 or more means Vigie would alert there. After that, scores are
    damped while that alert is open (`calm_buckets`), so that one event is one alert. The
    score at bucket t uses only buckets up to t.
    Missing or non-finite values (NaN: a gap in collection) are neither calm nor burst.

    Args:
        counts: one value per bucket, oldest first, regular buckets.
        period: buckets per day (288 for 5-minute buckets, 24 for hourly).
    """
    settings = settings or SeasonalSettings()
    if period < 1:
        raise ValueError("period must be at least one bucket per day")
    if len(counts) == 0:
        return []
    logged = signed_log(counts)
    z, accumulated = _multi_scale_z(logged, period=period, settings=settings)
    # The evidence is judged like any z: a series whose evidence often runs high (a noisy
    # week) needs more to alert (`_adaptive_threshold`).
    effective = np.fmax(z, accumulated)
    threshold = _adaptive_threshold(effective, period=period, settings=settings)
    raw = _sigmoid(settings.gain * (effective - threshold))
    raw = np.where(np.isnan(z), 0.0, raw)
    if settings.calm_buckets > 0:
        raw = _after_alerts_damped(raw, settings.calm_buckets)
    scores: list[float] = raw.tolist()
    return scores


def _after_alerts_damped(raw: np.ndarray, calm_buckets: int) -> np.ndarray:
    """Scores while an alert is open damped, as the alert lifecycle opens and resolves them.

    An alert opens at a score >= 0.5, every later score >= 0.5 keeps it open, and it resolves
    once `calm_buckets` buckets have passed without one: only the opening score stays whole.
    """
    triggers = np.flatnonzero(raw >= 0.5)
    if len(triggers) == 0:
        return raw
    opens = np.concatenate(([True], np.diff(triggers) > calm_buckets))
    starts = triggers[opens]
    closes = np.append(triggers[np.flatnonzero(opens)[1:] - 1], triggers[-1]) + calm_buckets
    edges = np.zeros(len(raw) + 1)
    np.add.at(edges, starts + 1, 1.0)
    np.add.at(edges, np.minimum(closes, len(raw)), -1.0)
    is_open = np.cumsum(edges)[: len(raw)] > 0
    damped: np.ndarray = np.where(is_open, raw * EVENT_DAMPING, raw)
    return damped


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
        # The series detector itself (`vigie detect-series`, the benchmarks), with the same
        # settings, over the windows read; its score of the last window is the volume score.
        volume_score = seasonal_anomaly_scores(
            masked, period=per_day, settings=volume_settings(detection)
        )[-1]
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
