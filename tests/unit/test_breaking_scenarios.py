"""Breaking stories on the labelled synthetic scenarios: the story is caught in its first hour
while the volume detector alone misses it, and no scenario without a crisis opens a story
alert."""

from __future__ import annotations

import pytest

from tasks.detect.breaking_simulation import replay_stories, story_scenarios
from tasks.detect.simulation import Scenario, replay, scenarios

SEEDS = [1, 2, 3]


def _scenario(name: str, seed: int) -> Scenario:
    return next(s for s in [*scenarios(seed), *story_scenarios(seed)] if s.name == name)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_story_carried_by_ten_outlets_alerts_in_its_first_hour(seed: int) -> None:
    breaking = _scenario("breaking-story", seed)
    result = replay_stories(breaking)
    assert breaking.onset is not None
    assert result.alerts == [breaking.onset]
    assert result.stories == ["story-recall"]


def test_the_volume_detector_alone_does_not_see_the_breaking_story() -> None:
    breaking = _scenario("breaking-story", 1)
    assert replay(breaking).alerts == []


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name",
    ["calm", "outage", "long-outage", "backfill", "positive-campaign", "syndicated-calm"],
)
def test_no_story_alert_without_a_crisis(name: str, seed: int) -> None:
    assert replay_stories(_scenario(name, seed)).alerts == []


def test_a_viral_crisis_is_also_one_story_alert_in_its_first_hour() -> None:
    viral = _scenario("viral", 1)
    result = replay_stories(viral)
    assert result.alerts == [viral.onset] and result.stories == ["story-recall"]
