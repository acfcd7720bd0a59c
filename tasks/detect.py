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
from collections.abc import Sequence
from datetime import datetime, timedelta

from vigie.models import VolumeSignal
from vigie.settings import Detection

MIN_BASELINE_WINDOWS = 6
BUCKET = timedelta(minutes=5)
# A deviation this many times the alert threshold is a crisis rather than an alert.
CRISIS_FACTOR = 5.0


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
) -> VolumeSignal:
    """Score the last window of `counts` (oldest first) against the windows before it.

    The score is in [0, 1]: 0.5 when the deviation equals `detection.threshold` spreads.
    `triggered` also needs at least `detection.min_mentions` mentions in the window.
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
    if first_seen is None or len(history) < MIN_BASELINE_WINDOWS:
        return VolumeSignal(topic, window_start, window_end, current, 0.0, 1.0, 0.0, 0.0, False)
    median, spread = robust_baseline(history)
    z = (current - median) / spread
    score = 1.0 / (1.0 + math.exp(-(z - detection.threshold)))
    triggered = current >= detection.min_mentions and z >= detection.threshold
    return VolumeSignal(
        topic, window_start, window_end, current, median, spread, score, z, triggered
    )


def alert_level(signal: VolumeSignal, detection: Detection) -> str:
    """`crise` when the deviation is `CRISIS_FACTOR` times the threshold, `alerte` otherwise."""
    return "crise" if signal.z >= CRISIS_FACTOR * detection.threshold else "alerte"


def alert_reason(signal: VolumeSignal) -> str:
    """One line saying why, kept with the alert (language-neutral figures)."""
    return (
        f"volume: {signal.current} mentions in window vs median {signal.baseline_median:g} "
        f"(spread {signal.baseline_spread:.2f}, z={signal.z:.1f}, score={signal.score:.2f})"
    )
