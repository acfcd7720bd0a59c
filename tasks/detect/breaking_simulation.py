"""Breaking stories on the synthetic scenarios: a replay of `assess_stories` hour by hour.

The scenarios of `tasks.detect.simulation` give each hour's mentions with their story and source;
here they are spread evenly over their hour, and `replay_stories` judges every hour as the watch
cycle's `detect-breaking-stories` step would (the baseline: the week before), with the topic's
one open alert, opened by a story and resolved after `detection.calm_minutes` without one. Two
scenarios of its own: `breaking-story` (one story carried by ten outlets in an hour at the busy
time of day, the topic's volume ordinary) and `syndicated-calm` (wire copies carried by three
outlets every hour and a positive press release carried by six each morning: no crisis).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tasks.detect.breaking import assess_stories, story_peaks
from tasks.detect.simulation import HOUR, START, Scenario, calm_counts
from vigie.models import StoryCopy, WindowMention
from vigie.settings import Detection

PLATFORMS = ("news", "social", "forum", "blog")


@dataclass
class StoryReplay:
    alerts: list[int] = field(default_factory=list)  # hours at which a story would open an alert
    stories: list[str] = field(default_factory=list)  # ... and the story that opens it
    noticed: list[int] = field(default_factory=list)  # hours with a breaking story, alerting or not

    def first_alert_after(self, hour: int) -> int | None:
        return next((h for h in self.alerts if h >= hour), None)


def _ordinary(count: int, hour: int, *, wire: bool = False) -> list[WindowMention]:
    """`count` small stories of one source each; with `wire`, the first three mentions are one
    story carried by three outlets (a wire copy)."""
    return [
        WindowMention(
            f"source-{(hour + i) % 11}",
            PLATFORMS[i % 4],
            3,
            f"La Laiterie Boréale, nouvelle {hour}-{i}",
            "",
            0.1 if i % 5 else -0.4,
            f"wire-{hour}" if wire and i < 3 else f"story-{hour}-{i}",
        )
        for i in range(count)
    ]


def story_scenarios(seed: int = 7) -> list[Scenario]:
    """The breaking-story scenario and a calm one whose stories are often syndicated."""
    weeks = 4
    # A Wednesday of the last week, noon: the busiest hour of the day, so ten copies of one
    # story are not more mentions than the topic usually has then.
    onset = (weeks - 1) * 7 * 24 + 2 * 24 + 12
    calm = calm_counts(weeks, seed=seed)
    rng = random.Random(seed)
    outlets = [f"Média {n}" for n in range(10)]
    rng.shuffle(outlets)
    spread = {onset: outlets, onset + 1: [f"Média {n}" for n in range(10, 13)]}

    def breaking_mentions(hour: int, count: int) -> list[WindowMention]:
        carriers = spread.get(hour, [])
        story = [
            WindowMention(
                name,
                "news",
                2,
                "Rappel de fromages Boréale : des clients malades",
                "",
                -0.6,
                "story-recall",
            )
            for name in carriers
        ]
        return story + _ordinary(max(0, count - len(story)), hour)

    breaking = list(calm)
    breaking[onset] = max(calm[onset], len(outlets))  # ordinary volume for that hour
    breaking[onset + 1] = max(calm[onset + 1], 3)

    def syndicated_mentions(hour: int, count: int) -> list[WindowMention]:
        mentions = _ordinary(count, hour, wire=True)
        if hour % 24 == 9:  # the morning press release, carried by six outlets
            mentions += [
                WindowMention(
                    f"Média {n}",
                    "news",
                    2,
                    "La Laiterie Boréale lance un fromage primé",
                    "",
                    0.7,
                    f"release-{hour // 24}",
                )
                for n in range(6)
            ]
        return mentions

    syndicated = [c + (6 if h % 24 == 9 else 0) for h, c in enumerate(calm)]
    return [
        Scenario(
            "breaking-story",
            breaking,
            breaking_mentions,
            onset,
            "one negative story carried by ten outlets in an hour; volume ordinary",
        ),
        Scenario(
            "syndicated-calm",
            syndicated,
            syndicated_mentions,
            None,
            "wire copies by three outlets every hour, a positive release by six each morning",
        ),
    ]


def _copies(mentions: Sequence[WindowMention], hour: int) -> list[StoryCopy]:
    start = START + HOUR * hour
    step = HOUR / max(1, len(mentions))
    return [
        StoryCopy(m, f"https://{m.source.lower().replace(' ', '-')}.example/{m.story_id}", at)
        for index, m in enumerate(mentions)
        for at in [start + step * (index + 0.5)]
    ]


def replay_stories(
    scenario: Scenario, detection: Detection | None = None, *, from_hour: int | None = None
) -> StoryReplay:
    """Judge every hour from `from_hour` (default: the last week) for breaking stories."""
    detection = detection or Detection()
    first = from_hour if from_hour is not None else len(scenario.counts) - 7 * 24
    copies = {
        hour: _copies(scenario.mentions_at(hour, scenario.counts[hour]), hour)
        for hour in range(max(0, first - detection.baseline_windows), len(scenario.counts))
    }
    result = StoryReplay()
    open_since: int | None = None  # the topic's alert, opened by a story (as the cycle keys it)
    last_trigger = -(10**9)
    for hour in range(first, len(scenario.counts)):
        baseline: list[tuple[str, str, datetime]] = [
            (c.mention.story_id, c.mention.source, c.published_at)
            for past in range(max(0, hour - detection.baseline_windows), hour)
            for c in copies[past]
        ]
        judged = {c.mention.story_id for c in copies[hour]}
        peaks = story_peaks(baseline, HOUR)
        found = assess_stories(
            "marque",
            copies[hour],
            [peak for story, peak in peaks.items() if story not in judged],
            window_start=START + HOUR * hour,
            window_end=START + HOUR * (hour + 1),
            detection=detection,
            baseline_negative_share=0.2,
        )
        if any(story.breaking for story in found):
            result.noticed.append(hour)
        alerting = sorted(
            (story for story in found if story.alerting), key=lambda s: -s.severity.score
        )
        if alerting:
            last_trigger = hour
            if open_since is None:
                open_since = hour
                result.alerts.append(hour)
                result.stories.append(alerting[0].story_id)
        elif open_since is not None and (hour - last_trigger) * 60 >= detection.calm_minutes:
            open_since = None
    return result
