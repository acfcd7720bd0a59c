"""Escalation through the crisis cell: an alert nobody acknowledges goes up the levels.

An alert first goes to the lowest level of the cell. When nobody acknowledged it within
`escalation.delay_minutes`, the next level that has members gets it, then the next, each
`delay_minutes` later; an acknowledgement (`vigie ack`, or the form of the alert's Prefect run)
stops it. Each step is an email (critical: it never waits for quiet hours), an `alert_events`
row and the alert's new `cell_level`, in one transaction, so a rerun never pages twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasks.notify.emails import as_drill, duty_entries, first_steps, header_safe
from tasks.notify.rendering import Texts, render, safe_href
from vigie.models import OutboxMessage
from vigie.settings import Member, Settings
from warehouse.drills import drill_alert_ids
from warehouse.store import Store, StoredAlert


@dataclass(frozen=True, slots=True)
class Paging:
    alert_id: str
    from_level: int
    to_level: int
    recipients: tuple[str, ...]


def next_level(members: Sequence[Member], current: int) -> int | None:
    """The lowest level above `current` that has somebody, or None at the top."""
    above = sorted({m.level for m in members if m.level > current})
    return above[0] if above else None


def due_pagings(
    alerts: Sequence[tuple[StoredAlert, int | None, datetime]],
    members: Sequence[Member],
    *,
    delay: timedelta,
    now: datetime,
) -> list[Paging]:
    """Which unacknowledged alerts go one level up now."""
    if not members:
        return []
    first = min(m.level for m in members)
    pagings = []
    for alert, cell_level, paged_at in alerts:
        current = cell_level if cell_level is not None else first
        if now - paged_at < delay:
            continue
        level = next_level(members, current)
        if level is None:
            continue
        recipients = tuple(m.email for m in members if m.level == level)
        pagings.append(Paging(alert.alert_id, current, level, recipients))
    return pagings


def escalation_message(
    settings: Settings,
    alert: StoredAlert,
    paging: Paging,
    *,
    reason: str,
    top_mentions: Sequence[dict[str, Any]],
    told: Sequence[Member],
) -> OutboxMessage:
    """The email to the next level (templates/escalation.*.j2): the alert in plain words, how to
    take charge (the alert's Prefect form when it has one), what to do now, who is on duty at
    this level (phones, backups), its stories, who was told, and the detection record last."""
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    minutes = settings.escalation.delay_minutes
    level = texts.get("levels", alert.level)
    values = {
        "org": settings.organisation.name,
        "topic": settings.watch_label(alert.topic),
        "level": level,
        "alert_id": alert.alert_id,
        "previous": paging.from_level,
        "minutes": minutes,
    }
    has_higher = next_level(settings.cell.members, paging.to_level) is not None
    stories = [
        {
            "title": str(item.get("title") or "")[:300],
            "href": safe_href(str(item.get("url") or "")),
            "url": str(item.get("url") or ""),
            "source": str(item.get("source") or "")[:120],
        }
        for item in top_mentions[:5]
    ]
    outlets = list(dict.fromkeys(item["source"] for item in stories if item["source"]))
    facts = [
        texts(
            "escalation.what",
            opened=texts.when(alert.opened_at),
            zone=texts.zone_name(),
            count=texts.number(alert.mentions_in_window, 0),
            window=settings.detection.window_minutes,
        )
    ]
    if outlets:
        facts.append(texts("escalation.outlets", outlets=", ".join(outlets)))
    context = {
        "tx": texts,
        "intro": texts("escalation.intro", **values),
        "facts": facts,
        "ack": texts("escalation.ack" if has_higher else "escalation.ack_top", **values),
        # The same run the alert email linked to: whoever takes charge there stops it.
        "ack_href": safe_href(alert.ack_url),
        "todo": first_steps(settings, texts),
        "duty_title": texts("duty.this_level"),
        "on_duty": duty_entries(settings, settings.level_members(paging.to_level), texts),
        "charter": settings.cell.charter,
        "stories": stories,
        "told": [f"{m.name} ({texts.get('roles', m.role)}, {m.email})" for m in told],
        "details": _details(texts, alert, reason),
        "alert_id": alert.alert_id,
    }
    return OutboxMessage(
        message_id=f"{alert.alert_id}.escalation.L{paging.to_level}",
        kind="escalation",
        recipients=paging.recipients,
        subject=header_safe(texts("escalation.subject", **values)),
        html=render("escalation.html.j2", **context),
        alert_id=alert.alert_id,
        text=render("escalation.txt.j2", **context),
        critical=True,
    )


def _details(texts: Texts, alert: StoredAlert, reason: str) -> list[str]:
    """The statistics of the alert, for the "Détails" part: its severity and the volume's
    deviation (the stored reason keeps the figures, written language-neutral)."""
    details = []
    if alert.severity is not None:
        details.append(texts("details.score", score=texts.number(alert.severity)))
    deviation = re.search(r"\bz=(-?\d+(?:\.\d+)?)", reason)
    if deviation:
        details.append(texts("details.deviation", z=texts.number(float(deviation.group(1)))))
    return details


def escalate_unacknowledged(store: Store, settings: Settings, *, now: datetime) -> list[str]:
    """Page the next level for every alert nobody acknowledged in time; one transaction each."""
    members = settings.cell.members
    alerts = store.unacknowledged_alerts()
    by_id = {alert.alert_id: alert for alert, _, _ in alerts}
    drills = drill_alert_ids(store, list(by_id))
    done = []
    for paging in due_pagings(
        alerts, members, delay=timedelta(minutes=settings.escalation.delay_minutes), now=now
    ):
        alert = by_id[paging.alert_id]
        top = store.top_mentions(
            alert.topic, start=alert.opened_at - timedelta(hours=1), end=now, limit=5
        )
        message = escalation_message(
            settings,
            alert,
            paging,
            reason=store.alert_reason(alert.alert_id),
            top_mentions=top,
            told=[m for m in members if m.level <= paging.from_level],
        )
        if alert.alert_id in drills:  # a drill rehearses escalation too, marked as such
            message = as_drill(message, settings.organisation.language)
        with store.transaction():
            store.queue(message, now)
            store.log_alert_event(
                alert.alert_id,
                "cell_escalated",
                now,
                {
                    "from_level": paging.from_level,
                    "to_level": paging.to_level,
                    "recipients": list(paging.recipients),
                },
            )
            store.record_paging(alert.alert_id, paging.to_level, now)
        done.append(f"{alert.alert_id}: level {paging.from_level} -> {paging.to_level}")
    return done
