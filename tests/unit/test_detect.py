"""Unit tests of volume detection (`tasks.detect.volume`): robust baseline, trigger rules, alert
level.

Counts are per window, oldest first; the last one is the current window, which ends at
`WINDOW_END`. `DETECTION` has threshold 4 and min_mentions 5 (the default threshold is 3,
chosen by cross-validation; these tests keep 4 for their arithmetic).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from tasks.detect.volume import (
    MIN_BASELINE_WINDOWS,
    assess_volume,
    robust_baseline,
)
from vigie.models import VolumeSignal
from vigie.settings import Detection

if TYPE_CHECKING:
    from collections.abc import Sequence

WINDOW = timedelta(hours=1)
WINDOW_END = datetime(2024, 5, 14, 15, 0, tzinfo=UTC)
LONG_AGO = WINDOW_END - timedelta(days=30)
FLAT = [2] * 24
DETECTION = Detection(threshold=4.0)


def assess(
    counts: Sequence[int],
    *,
    first_seen: datetime | None = LONG_AGO,
    detection: Detection = DETECTION,
) -> VolumeSignal:
    return assess_volume(
        "marque",
        counts,
        window_end=WINDOW_END,
        window=WINDOW,
        first_seen=first_seen,
        detection=detection,
    )


def signal_with_z(z: float) -> VolumeSignal:
    return VolumeSignal(
        topic="marque",
        window_start=WINDOW_END - WINDOW,
        window_end=WINDOW_END,
        current=100,
        baseline_median=2.0,
        baseline_spread=1.0,
        score=0.9,
        z=z,
        triggered=True,
    )


# --- robust_baseline -------------------------------------------------------------------------


def test_default_detection_has_threshold_3_and_min_mentions_5() -> None:
    assert (Detection().threshold, Detection().min_mentions) == (3.0, 5)


def test_baseline_of_no_history_is_zero_with_unit_spread() -> None:
    assert robust_baseline([]) == (0.0, 1.0)


def test_baseline_median_of_an_even_count_is_the_middle_mean() -> None:
    median, _ = robust_baseline([1, 3, 10, 0])
    assert median == 2.0


def test_baseline_spread_is_scaled_mad_when_it_dominates() -> None:
    median, spread = robust_baseline([0, 10, 0, 10, 0, 10, 5])
    assert median == 5.0
    assert spread == pytest.approx(1.4826 * 5)


def test_baseline_spread_is_floored_at_sqrt_median() -> None:
    median, spread = robust_baseline([9] * 10)
    assert (median, spread) == (9.0, pytest.approx(3.0))


@pytest.mark.parametrize(
    "counts",
    [
        pytest.param([0] * 10, id="all-zero"),
        pytest.param([1] * 10, id="all-one"),
        pytest.param([0, 0, 0, 1, 0], id="mostly-zero"),
    ],
)
def test_baseline_spread_is_never_below_one(counts: list[int]) -> None:
    _, spread = robust_baseline(counts)
    assert spread == 1.0


def test_baseline_ignores_a_single_past_spike() -> None:
    assert robust_baseline([2, 2, 2, 300, 2, 2, 2]) == robust_baseline([2] * 7)


# --- assess_volume ---------------------------------------------------------------------------


def test_a_jump_from_two_to_twenty_triggers() -> None:
    signal = assess([*FLAT, 20])
    assert signal.triggered
    assert signal.current == 20
    assert signal.baseline_median == 2.0
    assert signal.z >= DETECTION.threshold


def test_a_jump_below_min_mentions_does_not_trigger() -> None:
    # From 0 to 4: z = 4 spreads (spread floor 1) but fewer than 5 mentions.
    signal = assess([*([0] * 24), 4])
    assert signal.z >= DETECTION.threshold
    assert not signal.triggered


def test_the_usual_volume_does_not_trigger() -> None:
    assert not assess([*FLAT, 2]).triggered


def test_a_moderate_rise_under_the_threshold_does_not_trigger() -> None:
    # median 2, spread sqrt(2): 7 mentions is z ~ 3.5 < 4.
    signal = assess([*FLAT, 7])
    assert signal.z < DETECTION.threshold
    assert not signal.triggered


def test_a_past_spike_in_the_baseline_does_not_prevent_a_later_trigger() -> None:
    history = [2] * 10 + [60, 45] + [2] * 12
    signal = assess([*history, 20])
    assert signal.baseline_median == 2.0
    assert signal.triggered


def test_deviation_equal_to_the_threshold_triggers_with_score_one_half() -> None:
    # median 4, spread sqrt(4) = 2: 12 mentions is exactly 4 spreads.
    signal = assess([*([4] * 24), 12])
    assert signal.z == pytest.approx(4.0)
    assert signal.score == pytest.approx(0.5)
    assert signal.triggered


def test_a_topic_first_seen_two_windows_ago_is_warming_up() -> None:
    signal = assess([*FLAT, 20], first_seen=WINDOW_END - 2 * WINDOW)
    assert not signal.triggered
    assert signal.score == 0.0


def test_a_topic_never_seen_does_not_trigger() -> None:
    signal = assess([*FLAT, 20], first_seen=None)
    assert not signal.triggered


def test_a_topic_with_exactly_the_minimum_baseline_windows_can_trigger() -> None:
    # Windows ending after first_seen count: first_seen 7 windows before the end leaves 6.
    first_seen = WINDOW_END - (MIN_BASELINE_WINDOWS + 1) * WINDOW
    assert assess([*FLAT, 20], first_seen=first_seen).triggered


def test_a_topic_one_window_short_of_the_minimum_baseline_cannot_trigger() -> None:
    first_seen = WINDOW_END - MIN_BASELINE_WINDOWS * WINDOW
    assert not assess([*FLAT, 20], first_seen=first_seen).triggered


def test_a_short_history_cannot_trigger_even_for_an_old_topic() -> None:
    counts = [2] * (MIN_BASELINE_WINDOWS - 1) + [50]
    assert not assess(counts).triggered


def test_windows_before_first_seen_are_not_counted_as_calm() -> None:
    # Zeros before the topic existed would make 3 mentions look like a spike.
    counts = [0] * 18 + [3] * 6 + [3]
    first_seen = WINDOW_END - 7 * WINDOW - timedelta(minutes=30)
    signal = assess(counts, first_seen=first_seen)
    assert signal.baseline_median == 3.0


def test_the_signal_covers_the_last_window() -> None:
    signal = assess([*FLAT, 20])
    assert (signal.window_start, signal.window_end) == (WINDOW_END - WINDOW, WINDOW_END)
    assert signal.topic == "marque"


def test_no_counts_at_all_does_not_trigger() -> None:
    signal = assess([])
    assert (signal.current, signal.triggered) == (0, False)


def test_score_is_between_zero_and_one() -> None:
    scores = [assess([*FLAT, current]).score for current in (0, 1, 2, 5, 20, 200, 10_000)]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_score_increases_with_the_current_count() -> None:
    scores = [assess([*FLAT, current]).score for current in range(0, 40)]
    assert all(a < b for a, b in itertools.pairwise(scores))


def test_a_higher_threshold_needs_a_larger_deviation() -> None:
    strict = Detection(threshold=20.0)
    assert assess([*FLAT, 20]).triggered
    assert not assess([*FLAT, 20], detection=strict).triggered


def test_score_and_z_are_consistent() -> None:
    signal = assess([*FLAT, 20])
    expected_z = (20 - 2) / math.sqrt(2)
    assert signal.z == pytest.approx(expected_z)
    assert signal.score == pytest.approx(1 / (1 + math.exp(-(expected_z - 4))))
