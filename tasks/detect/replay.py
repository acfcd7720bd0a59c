"""Replay: rerun detection over stored history with the current settings, to tune it without
waiting for the next crisis. Nothing is written: alerts are simulated in memory with the same
rules as the watch cycle (one open alert per topic, opened by its volume or by one of its stories
spreading fast, resolved after a calm period)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.detect.breaking import StoryAssessment, assess_breaking_stories
from tasks.detect.volume import assess_watches, bucket_ceiling
from vigie.settings import Detection
from warehouse.store import Store


@dataclass(frozen=True, slots=True)
class ReplayedAlert:
    topic: str
    opened_at: datetime
    level: str
    severity: float
    contributions: dict[str, float]
    highest_level: str
    resolved_at: datetime | None
    # The breaking story that opened it (None: the topic's volume did), as the watch cycle
    # names it in the alert.
    story_id: str | None = None
    story_title: str | None = None


@dataclass
class _OpenAlert:
    topic: str
    opened_at: datetime
    level: str
    severity: float
    contributions: dict[str, float]
    highest_level: str
    last_trigger: datetime
    story: StoryAssessment | None = None

    def closed(self, at: datetime | None) -> ReplayedAlert:
        return ReplayedAlert(
            self.topic,
            self.opened_at,
            self.level,
            self.severity,
            self.contributions,
            self.highest_level,
            at,
            self.story.story_id if self.story else None,
            self.story.title if self.story else None,
        )


def replay_history(
    store: Store,
    topics: Sequence[str],
    detection: Detection,
    *,
    since: datetime,
    until: datetime,
    step: timedelta,
    progress: Callable[[int, int], None] | None = None,
    sources: Sequence[str] = (),
    min_coverage: float = 0.5,
) -> list[ReplayedAlert]:
    """Which alerts would have opened between `since` and `until`, assessed every `step`.

    With the configured `sources`, windows where collection was down are judged as the watch
    cycle judges them (not calm, not baseline)."""
    rank = {"veille": 0, "vigilance": 1, "alerte": 2, "crise": 3}
    calm = timedelta(minutes=detection.calm_minutes)
    steps = max(1, int((until - since) / step))
    open_alerts: dict[str, _OpenAlert] = {}
    replayed: list[ReplayedAlert] = []
    window = timedelta(minutes=detection.window_minutes)
    for index in range(steps):
        now = since + step * (index + 1)
        assessed = assess_watches(
            store, topics, detection, now, sources=sources, min_coverage=min_coverage
        )
        end = bucket_ceiling(now)
        stories = assess_breaking_stories(
            store, topics, detection, window_start=end - window, window_end=end
        )
        for assessment in assessed:
            topic, severity = assessment.signal.topic, assessment.severity
            alert = open_alerts.get(topic)
            # As the watch cycle: a story spreading fast opens its topic's alert too.
            story = next((s for s in stories if s.topic == topic and s.alerting), None)
            if story is not None and not assessment.alerting:
                severity = story.severity
            if assessment.alerting or story is not None:
                if alert is None:
                    open_alerts[topic] = _OpenAlert(
                        topic,
                        now,
                        severity.level,
                        severity.score,
                        severity.contributions,
                        severity.level,
                        now,
                        None if assessment.alerting else story,
                    )
                else:
                    alert.last_trigger = now
                    if rank[severity.level] > rank[alert.highest_level]:
                        alert.highest_level = severity.level
            elif alert is not None and now - alert.last_trigger >= calm:
                replayed.append(open_alerts.pop(topic).closed(now))
        if progress is not None:
            progress(index + 1, steps)
    replayed.extend(alert.closed(None) for alert in open_alerts.values())
    return sorted(replayed, key=lambda a: a.opened_at)
