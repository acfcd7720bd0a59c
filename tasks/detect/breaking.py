"""Breaking stories: one story that spreads fast, whatever the topic's total volume.

As the EU's Europe Media Monitor flags breaking news, a story (a cluster of `tasks.enrich.stories`)
is breaking when the distinct sources that carried it in the current window reach both
`detection.breaking_min_sources` and `detection.breaking_factor` times the topic's usual
spread: the peak number of distinct sources that `USUAL_QUANTILE` of the topic's stories of the
baseline reached within any window as long (at least 1). One article picked up by ten outlets in
an hour is then seen while the topic's volume is still ordinary; a topic whose stories are
often syndicated needs more before it alerts, and a calm topic of many one-source stories never
reaches the minimum.

The story's tone decides whether it is an alert, as for volume (`tasks.detect.signals`): a press
release carried by ten outlets is not a crisis. The severity is that of the story's copies with
the breaking spread in the place of volume. An alerting story opens its topic's alert when none
is open (the email names the story) and otherwise keeps it current and escalates it: the key
and the life of the alert are the volume alert's (`tasks.notify.alerts`), and a burst of stories
spreading at once is one alert, not one email each.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.detect.signals import CRISIS_LEXICON, Severity, assess_severity
from vigie.models import StoryCopy, VolumeSignal
from vigie.query import fold
from vigie.settings import Detection
from warehouse.store import Store

USUAL_QUANTILE = 0.9  # the usual spread: what 90% of the baseline's stories did not exceed


@dataclass(frozen=True, slots=True)
class StoryAssessment:
    """What detection says about one story of a topic in the current window."""

    topic: str
    story_id: str
    title: str
    url: str
    window_start: datetime
    window_end: datetime
    # Each source that carried the story in the window with the link of its copy, in the
    # order they picked it up.
    outlets: tuple[tuple[str, str], ...]
    usual_spread: float
    needed: float
    breaking: bool
    severity: Severity

    @property
    def sources(self) -> int:
        return len(self.outlets)

    @property
    def alerting(self) -> bool:
        return self.breaking and self.severity.level in ("alerte", "crise")

    @property
    def signal(self) -> VolumeSignal:
        """The figures the alert lifecycle keeps: distinct sources against the needed spread;
        the score is 0.5 at the threshold, as the volume detector's."""
        score = self.sources / (self.sources + self.needed)
        return VolumeSignal(
            self.topic,
            self.window_start,
            self.window_end,
            self.sources,
            self.usual_spread,
            self.needed,
            score,
            self.sources / self.usual_spread,
            self.breaking,
        )


def peak_spread(sightings: Iterable[tuple[str, datetime]], window: timedelta) -> int:
    """The most distinct sources that carried one story within any `window` (a half-open
    interval), from its (source, published_at) sightings."""
    events = sorted((at, source) for source, at in sightings)
    carried: Counter[str] = Counter()
    best = 0
    first = 0
    for at, source in events:
        carried[source] += 1
        while events[first][0] <= at - window:
            leaving = events[first][1]
            carried[leaving] -= 1
            if not carried[leaving]:
                del carried[leaving]
            first += 1
        best = max(best, len(carried))
    return best


def story_peaks(rows: Iterable[tuple[str, str, datetime]], window: timedelta) -> dict[str, int]:
    """Each story's `peak_spread`, from (story, source, published_at) rows."""
    by_story: dict[str, list[tuple[str, datetime]]] = {}
    for story, source, at in rows:
        by_story.setdefault(story, []).append((source, at))
    return {story: peak_spread(seen, window) for story, seen in by_story.items()}


def usual_spread(peaks: Collection[int], quantile: float = USUAL_QUANTILE) -> float:
    """The peak spread `quantile` of the baseline's stories did not exceed; 1 at least (a
    topic without stories yet: one source per story)."""
    if not peaks:
        return 1.0
    ordered = sorted(peaks)
    return float(max(1, ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]))


def sources_needed(usual: float, *, min_sources: int, factor: float) -> float:
    """Distinct sources in the window at which a story is breaking."""
    return max(float(min_sources), factor * usual)


def assess_stories(
    topic: str,
    copies: Sequence[StoryCopy],
    baseline: Collection[int],
    *,
    window_start: datetime,
    window_end: datetime,
    detection: Detection,
    baseline_negative_share: float,
) -> list[StoryAssessment]:
    """Judge the topic's stories of the window against the spread of its baseline stories.

    Returns an assessment for every story that reaches the minimum of distinct sources, in
    order of their first copy.

    Args:
        copies: each source's copy of the topic's stories published in the window (no
            backfill), as `Store.story_copies` reads them.
        baseline: the peak spread of each of the topic's stories before the window, but
            those of the window (the stories judged are not their own baseline).
    """
    window = window_end - window_start
    by_story: dict[str, list[StoryCopy]] = {}
    for copy in copies:
        by_story.setdefault(copy.mention.story_id, []).append(copy)
    usual = usual_spread(baseline)
    needed = sources_needed(
        usual, min_sources=detection.breaking_min_sources, factor=detection.breaking_factor
    )
    lexicon = {**CRISIS_LEXICON, **{fold(k): v for k, v in detection.vocabulary.items()}}
    found: list[StoryAssessment] = []
    for story_id, story_copies in by_story.items():
        outlets: dict[str, str] = {}
        for copy in story_copies:
            outlets.setdefault(copy.mention.source, copy.url)
        if len(outlets) < detection.breaking_min_sources:
            continue
        breaking = len(outlets) >= needed
        mentions = [copy.mention for copy in story_copies]
        severity = _story_severity(
            assess_severity(
                mentions,
                volume_score=1.0 if breaking else 0.0,
                enough_volume=breaking,
                baseline_negative_share=baseline_negative_share,
                sensitivity=detection.sensitivity,
                lexicon=lexicon,
                window_hours=window / timedelta(hours=1),
            )
        )
        found.append(
            StoryAssessment(
                topic,
                story_id,
                story_copies[0].mention.title,
                story_copies[0].url,
                window_start,
                window_end,
                tuple(outlets.items()),
                usual,
                needed,
                breaking,
                severity,
            )
        )
    return found


def _story_severity(severity: Severity) -> Severity:
    """The story's severity with its spread named for what it is (not the topic's volume)."""
    contributions = {
        ("breaking" if name == "volume" else name): value
        for name, value in severity.contributions.items()
    }
    return Severity(severity.score, severity.level, contributions, severity.evidence)


def one_per_story(assessments: Iterable[StoryAssessment]) -> list[StoryAssessment]:
    """A story matched by several topics is judged once: where it alerts (the first such
    topic), otherwise where it was met first, so that it never has two alerts."""
    chosen: dict[str, StoryAssessment] = {}
    for assessment in assessments:
        held = chosen.get(assessment.story_id)
        if held is None or (assessment.alerting and not held.alerting):
            chosen[assessment.story_id] = assessment
    return list(chosen.values())


def story_reason(story: StoryAssessment) -> str:
    """One line saying why, kept with the alert (language-neutral figures)."""
    severity = story.severity
    parts = ", ".join(f"{k} {v:g}" for k, v in severity.contributions.items() if v)
    return (
        f"severity {severity.score:g}/100 ({parts}); breaking story {story.story_id} "
        f"({story.title!r}): "
        f"{story.sources} distinct sources in window vs usual spread {story.usual_spread:g} "
        f"(needed {story.needed:g})"
    )


def assess_breaking_stories(
    store: Store,
    topics: Sequence[str],
    detection: Detection,
    *,
    window_start: datetime,
    window_end: datetime,
) -> list[StoryAssessment]:
    """Each topic's stories that reach the minimum of sources in the window, from the
    warehouse; the baseline is the volume detector's (`baseline_windows`)."""
    window = window_end - window_start
    baseline_start = window_start - window * detection.baseline_windows
    found: list[StoryAssessment] = []
    for topic in topics:
        copies = store.story_copies(topic, start=window_start, end=window_end)
        within, spanning = store.story_spreads(
            topic,
            start=baseline_start,
            end=window_start,
            window=window,
            exclude=sorted({copy.mention.story_id for copy in copies}),
        )
        peaks = [*within.elements(), *story_peaks(spanning, window).values()]
        found.extend(
            assess_stories(
                topic,
                copies,
                peaks,
                window_start=window_start,
                window_end=window_end,
                detection=detection,
                baseline_negative_share=store.negative_share(
                    topic, start=baseline_start, end=window_start
                ),
            )
        )
    return one_per_story(found)
