"""Alerts: the life of an alert per topic, from its severity in each cycle.

A topic whose severity reaches `alerte` (or `crise`) opens an alert, unless one is open: then
the alert is escalated when the level rises, updated when the evidence grows, and resolved
after `detection.calm_minutes` without a trigger. One topic never has two open alerts: a
breaking story (tasks/detect/breaking.py) opens the topic's alert when none is open, and counts as a
trigger of the one that is. Every transition is a row of `alert_events`; opening an alert, its
event and its email are one transaction, so a retried cycle either finds the alert (and does
nothing) or opens it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasks.detect.breaking import StoryAssessment, story_reason
from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment, alert_reason
from tasks.notify.channels import with_topic_teams
from tasks.notify.chart import alert_chart
from tasks.notify.emails import alert_message
from vigie.models import VolumeSignal
from vigie.settings import Settings
from warehouse.store import Store


@dataclass
class AlertChanges:
    opened: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def raise_alerts(
    store: Store,
    settings: Settings,
    assessments: Sequence[TopicAssessment],
    *,
    now: datetime,
    run_url: str | None,
    ack_link: Callable[[str], str | None] | None = None,
    drill: bool = False,
    stories: Sequence[StoryAssessment] = (),
) -> AlertChanges:
    """Open, escalate, update or resolve each topic's alert; return what changed.

    A topic's alert opens on its volume assessment or on one of its alerting breaking
    `stories`, the most severe first (a story's email names the story); while it is open, both
    keep it current and escalate it, so that a burst of stories is one alert, not one email
    each. `ack_link(alert_id)` may start a run waiting for an acknowledgement and return its
    page, which the alert email links to and the alert keeps for its escalations (without it,
    the emails give `vigie ack`). A
    `drill`'s alerts are marked as such, and so are their emails.
    """
    changes = AlertChanges()
    calm = timedelta(minutes=settings.detection.calm_minutes)
    judged: list[tuple[VolumeSignal, Severity, bool, StoryAssessment | None]] = [
        (a.signal, a.severity, a.alerting, None) for a in assessments
    ]
    # A story that does not alert says nothing of the topic's alert: its volume assessment
    # keeps it current and resolves it.
    judged += [(s.signal, s.severity, True, s) for s in stories if s.alerting]
    # On a tie, the story opens the alert: its email says more (which story, where).
    judged.sort(key=lambda item: (-item[1].score, item[3] is None))
    # One commit for the cycle's alerts: a burst of stories updates its topic's alert once
    # per story (135 at 10x, bench_load.py), and each commit writes the log to disk.
    with store.transaction():
        for signal, severity, alerting, story in judged:
            existing = store.open_alert_for(signal.topic)
            if existing is not None:
                kind = store.update_alert(
                    existing,
                    signal,
                    now,
                    level=severity.level if alerting else existing.level,
                    severity=severity.score,
                    contributions=severity.contributions,
                    triggered=alerting,
                )
                if kind == "escalated":
                    changes.escalated.append(existing.alert_id)
                elif kind == "updated":
                    changes.updated.append(existing.alert_id)
                last = existing.last_triggered_at or existing.opened_at
                if not alerting and now - last >= calm:
                    store.resolve_alert(
                        existing.alert_id,
                        now,
                        f"no trigger for {settings.detection.calm_minutes} min",
                    )
                    changes.resolved.append(existing.alert_id)
                continue
            if not alerting:
                continue
            alert_id = f"al-{now:%Y%m%d%H%M}-{uuid.uuid4().hex[:8]}"
            top = (
                []  # a story's email lists its outlets instead
                if story
                else store.top_mentions(
                    signal.topic, start=signal.window_start, end=signal.window_end
                )
            )
            chart = alert_chart(
                store,
                signal.topic,
                end=signal.window_end,
                marker=now,
                language=settings.organisation.language,
                tz=settings.organisation.timezone,
                label=settings.watch_label(signal.topic),
            )
            ack_url = ack_link(alert_id) if ack_link else None
            message = alert_message(
                settings,
                alert_id=alert_id,
                signal=signal,
                level=severity.level,
                top_mentions=top,
                run_url=run_url,
                severity=severity,
                chart=chart,
                ack_url=ack_url,
                drill=drill,
                story=story,
            )
            # A topic may have a team of its own: its alert goes to that team too.
            message = with_topic_teams(settings, signal.topic, message)
            store.open_alert(
                alert_id,
                signal,
                level=severity.level,
                reason=story_reason(story) if story else alert_reason(signal, severity),
                now=now,
                messages=[message],
                severity=severity.score,
                contributions=severity.contributions,
                drill=drill,
                story_id=story.story_id if story else None,
                ack_url=ack_url,
            )
            changes.opened.append(alert_id)
    return changes
