"""Detection on the labelled synthetic scenarios: the clear cases, over several random seeds."""

from __future__ import annotations

import pytest

from tasks.detect.simulation import Scenario, replay, scenarios

SEEDS = [1, 2, 3]


def _scenario(name: str, seed: int) -> Scenario:
    return next(s for s in scenarios(seed) if s.name == name)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_viral_crisis_alerts_within_its_first_hour(seed: int) -> None:
    viral = _scenario("viral", seed)
    result = replay(viral)
    assert viral.onset is not None
    assert result.first_alert_after(viral.onset) == viral.onset
    assert len(result.alerts) == 1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["calm", "outage", "long-outage", "backfill", "positive-campaign"])
def test_no_alert_without_a_crisis(name: str, seed: int) -> None:
    result = replay(_scenario(name, seed))
    assert result.alerts == []


def test_the_positive_campaign_is_noticed_without_alerting() -> None:
    campaign = _scenario("positive-campaign", 1)
    result = replay(campaign)
    assert "vigilance" in result.levels


def test_a_slow_burn_is_caught_within_its_day_and_a_half() -> None:
    slow = _scenario("slow-burn", 7)
    assert slow.onset is not None
    caught = replay(slow).first_alert_after(slow.onset)
    assert caught is not None and caught < slow.onset + 36


@pytest.mark.parametrize("seed", [3, 8, 27])
def test_a_slow_burn_starting_at_night_is_caught_within_12_hours(seed: int) -> None:
    """Seeds where each night hour of the burn stays within the log-scale noise (z near 2):
    the hours' own scores caught them only after 22 hours, their accumulated evidence does
    within 12."""
    slow = _scenario("slow-burn", seed)
    assert slow.onset is not None
    slow.counts = slow.counts[: slow.onset + 12]  # the first 12 hours are what is judged
    caught = replay(slow, from_hour=slow.onset - 24).first_alert_after(slow.onset)
    assert caught is not None and caught < slow.onset + 12
