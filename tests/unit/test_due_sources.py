"""`due_sources`: which sources a cycle polls (poll interval, back-off after failures)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.collect.fetch import MAX_BACKOFF_CYCLES, due_sources
from vigie.models import SourceState
from vigie.settings import Source

NOW = datetime(2026, 5, 14, 12, 0, tzinfo=UTC)
CYCLE = 10  # minutes


def src(name: str = "s", poll_minutes: int | None = None) -> Source:
    return Source(name=name, url="https://example.org/feed.xml", poll_minutes=poll_minutes)


def state(name: str = "s", *, ago_min: float, failures: int = 0) -> SourceState:
    return SourceState(
        name, last_run_at=NOW - timedelta(minutes=ago_min), consecutive_failures=failures
    )


def names(sources: list[Source]) -> list[str]:
    return [s.name for s in sources]


def test_a_source_never_run_is_due() -> None:
    due, skipped = due_sources([src()], {}, NOW, cycle_minutes=CYCLE)
    assert names(due) == ["s"] and skipped == {}


def test_a_source_without_poll_interval_is_due_every_cycle() -> None:
    due, skipped = due_sources([src()], {"s": state(ago_min=CYCLE)}, NOW, cycle_minutes=CYCLE)
    assert names(due) == ["s"] and skipped == {}


def test_a_source_with_a_poll_interval_waits_for_it() -> None:
    hourly = src(poll_minutes=60)
    due, skipped = due_sources([hourly], {"s": state(ago_min=30)}, NOW, cycle_minutes=CYCLE)
    assert due == [] and skipped == {"s": "polled every 60 min"}
    # A cycle that starts a little early (schedule jitter) still polls it.
    due, skipped = due_sources([hourly], {"s": state(ago_min=58)}, NOW, cycle_minutes=CYCLE)
    assert names(due) == ["s"] and skipped == {}


@pytest.mark.parametrize("failures", [0, 1, 2])
def test_fewer_than_three_failures_do_not_back_off(failures: int) -> None:
    states = {"s": state(ago_min=CYCLE, failures=failures)}
    due, _ = due_sources([src()], states, NOW, cycle_minutes=CYCLE)
    assert names(due) == ["s"]


def skipped_cycles(failures: int) -> int:
    """How many cycles in a row a source with this failure streak is skipped."""
    for cycle in range(1, 200):
        states = {"s": state(ago_min=cycle * CYCLE, failures=failures)}
        due, skipped = due_sources([src()], states, NOW, cycle_minutes=CYCLE)
        if due:
            return cycle - 1
        assert "after" in skipped["s"] and "failures" in skipped["s"]
    raise AssertionError("never due again")


@pytest.mark.parametrize(
    ("failures", "cycles"),
    [(3, 1), (4, 2), (5, 4), (6, 8), (7, 16), (8, 32), (9, 32), (40, MAX_BACKOFF_CYCLES)],
)
def test_back_off_doubles_after_three_failures_and_is_capped(failures: int, cycles: int) -> None:
    assert skipped_cycles(failures) == cycles


def test_skipped_sources_are_reported_apart_and_the_others_keep_their_order() -> None:
    sources = [src("a"), src("b", poll_minutes=120), src("c"), src("d")]
    states = {
        "b": state("b", ago_min=CYCLE),
        "c": state("c", ago_min=CYCLE, failures=5),
        "d": state("d", ago_min=CYCLE, failures=1),
    }
    due, skipped = due_sources(sources, states, NOW, cycle_minutes=CYCLE)
    assert names(due) == ["a", "d"]
    assert set(skipped) == {"b", "c"}
