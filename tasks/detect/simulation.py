"""Synthetic crisis scenarios, and a replay of detection over them hour by hour.

Each scenario is hourly mention counts over a few weeks with daily and weekly seasonality, plus
what the mentions of each hour say (sentiment, crisis words, outlets, platforms). `replay`
runs the same `assess_topic` as the watch cycle on every hour, causally, and reports the levels
and the alerts that would have opened. The tests assert the clear cases; `make bench` prints
time to first alert and false alerts per week for every scenario.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tasks.detect.volume import assess_topic
from vigie.models import WindowMention
from vigie.settings import Detection

HOUR = timedelta(hours=1)
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday


@dataclass
class Scenario:
    name: str
    counts: list[int]
    # For each hour, the mentions of that hour (only built for the hours that are assessed).
    mentions_at: Callable[[int, int], list[WindowMention]]
    onset: int | None = None  # hour the crisis starts, None when there is none
    notes: str = ""
    # Share of the sources collected in each hour (None: all of them, always).
    coverage: list[float] | None = None


@dataclass
class ReplayResult:
    alerts: list[int] = field(default_factory=list)  # hours at which an alert would open
    levels: list[str] = field(default_factory=list)

    def first_alert_after(self, hour: int) -> int | None:
        return next((h for h in self.alerts if h >= hour), None)


def _seasonal_rate(hour: int, base: float) -> float:
    day, hod = divmod(hour, 24)
    daily = 0.3 + 1.4 * max(0.0, math.sin((hod - 6) / 24 * 2 * math.pi))
    weekly = 0.5 if day % 7 in (5, 6) else 1.0
    return base * daily * weekly


def _poisson(rng: random.Random, rate: float) -> int:
    # Knuth's method is fine for the small rates of a topic's hourly mentions.
    if rate > 50:
        return max(0, round(rng.gauss(rate, math.sqrt(rate))))
    limit, k, p = math.exp(-rate), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _calm_mentions(count: int, hour: int, *, sentiment: float = 0.1) -> list[WindowMention]:
    platforms = ("news", "social", "forum", "blog")
    return [
        WindowMention(
            f"source-{i % 7}",
            platforms[i % 4],
            3,
            f"La Laiterie Boréale, nouvelle {hour}-{i}",
            "",
            sentiment if i % 5 else -0.4,
            f"story-{hour}-{i}",
        )
        for i in range(count)
    ]


def calm_counts(weeks: int = 4, base: float = 6.0, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [_poisson(rng, _seasonal_rate(h, base)) for h in range(weeks * 7 * 24)]


def scenarios(seed: int = 7) -> list[Scenario]:
    """The labelled scenarios: calm, slow burn, viral, major pick-up, outage, backfill, campaign."""
    weeks = 4
    found: list[Scenario] = []
    onset = (weeks - 1) * 7 * 24 + 2 * 24 + 20  # a Wednesday, 20:00 of the last week

    calm = calm_counts(weeks, seed=seed)
    found.append(Scenario("calm", calm, lambda h, c: _calm_mentions(c, h)))

    def crisis_mentions(
        h: int, c: int, *, start: int, hours: int, tier1: bool
    ) -> list[WindowMention]:
        if not start <= h < start + hours:
            return _calm_mentions(c, h)
        platforms = ("social", "forum", "news", "social")
        return [
            WindowMention(
                "Le Quotidien" if tier1 and i == 0 else f"source-{i % 9}",
                platforms[i % 4],
                1 if tier1 and i == 0 else 3,
                "Scandale : rappel des fromages Boréale, des clients malades"
                if i % 3
                else "Boycott de la Laiterie Boréale",
                "",
                -0.7,
                "story-recall",
            )
            for i in range(c)
        ]

    viral = list(calm)
    for k, extra in enumerate([25, 60, 90, 80, 60, 40, 30, 20]):
        viral[onset + k] += extra
    found.append(
        Scenario(
            "viral",
            viral,
            lambda h, c: crisis_mentions(h, c, start=onset, hours=8, tier1=False),
            onset,
            "a sudden negative story on social media",
        )
    )

    slow = list(calm)
    for k in range(36):
        slow[onset + k] += int(2 + k * 0.6)
    found.append(
        Scenario(
            "slow-burn",
            slow,
            lambda h, c: crisis_mentions(h, c, start=onset, hours=36, tier1=False),
            onset,
            "a complaint that grows for a day and a half",
        )
    )

    pickup = list(calm)
    for k, extra in enumerate([6, 8, 12, 15, 15, 12, 10, 8]):
        pickup[onset + k] += extra
    found.append(
        Scenario(
            "major-pickup",
            pickup,
            lambda h, c: crisis_mentions(h, c, start=onset, hours=8, tier1=True),
            onset,
            "a modest story that a major daily picks up",
        )
    )

    outage = list(calm)
    outage_coverage = [1.0] * len(calm)
    for k in range(8):
        outage[onset + k] = 0  # the sources were down: nothing was collected
        outage_coverage[onset + k] = 0.0
    found.append(
        Scenario(
            "outage",
            outage,
            lambda h, c: _calm_mentions(c, h),
            None,
            "eight hours without collection, then normal volume",
            outage_coverage,
        )
    )

    # Four days down out of the week the baseline reads: a detector that took the gap for
    # calm would see the return of normal volume as a surge.
    long_outage = list(calm)
    long_coverage = [1.0] * len(calm)
    for k in range(96):
        long_outage[onset - 96 + k] = 0
        long_coverage[onset - 96 + k] = 0.0
    found.append(
        Scenario(
            "long-outage",
            long_outage,
            lambda h, c: _calm_mentions(c, h),
            None,
            "four days without collection, then normal volume",
            long_coverage,
        )
    )

    backfill = list(calm)
    for k in range(1, 72):  # a new source brings three days of old items at once
        backfill[onset - k] += 4
    found.append(
        Scenario(
            "backfill",
            backfill,
            lambda h, c: _calm_mentions(c, h),
            None,
            "old items arrive at once; they land in past hours",
        )
    )

    campaign = list(calm)
    for k in range(12):
        campaign[onset + k] += 40
    found.append(
        Scenario(
            "positive-campaign",
            campaign,
            lambda h, c: (
                _calm_mentions(c, h, sentiment=0.8) if h >= onset else _calm_mentions(c, h)
            ),
            None,
            "a popular, positive campaign: busy but not a crisis",
        )
    )
    return found


def replay(
    scenario: Scenario,
    detection: Detection | None = None,
    *,
    from_hour: int | None = None,
    use_coverage: bool = True,
) -> ReplayResult:
    """Assess every hour from `from_hour` (default: the last week) as the watch cycle would,
    with one open alert per topic (resolved after `detection.calm_minutes` of calm).

    `use_coverage=False` hides the collection gaps from detection, to show what they cost."""
    detection = detection or Detection()
    windows = detection.baseline_windows + 1
    start = from_hour if from_hour is not None else len(scenario.counts) - 7 * 24
    result = ReplayResult()
    open_since: int | None = None
    last_trigger = -(10**9)
    for hour in range(start, len(scenario.counts)):
        counts = scenario.counts[max(0, hour + 1 - windows) : hour + 1]
        counts = [0] * (windows - len(counts)) + counts
        coverage: list[float] = []
        if scenario.coverage is not None and use_coverage:
            coverage = scenario.coverage[max(0, hour + 1 - windows) : hour + 1]
            coverage = [1.0] * (windows - len(coverage)) + coverage
        end = START + HOUR * (hour + 1)
        assessment = assess_topic(
            "marque",
            counts,
            window_end=end,
            window=HOUR,
            first_seen=START,
            mentions=scenario.mentions_at(hour, scenario.counts[hour]),
            baseline_negative_share=0.2,
            detection=detection,
            coverage=coverage,
        )
        result.levels.append(assessment.severity.level)
        if assessment.alerting:
            last_trigger = hour
            if open_since is None:
                open_since = hour
                result.alerts.append(hour)
        elif open_since is not None and (hour - last_trigger) * 60 >= detection.calm_minutes:
            open_since = None
    return result
