"""Escalation through the crisis cell: an alert nobody acknowledges goes up the levels.

An alert first goes to the lowest level of the cell. When nobody acknowledged it within
`escalation.delay_minutes`, the next level that has members gets it, then the next, each
`delay_minutes` later; an acknowledgement (`vigie ack`, or the form of the alert's Prefect run)
stops it. Each step is an email (critical: it never waits for quiet hours), an `alert_events`
row and the alert's new `cell_level`, in one transaction, so a rerun never pages twice.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tasks.notify.emails import LEVEL_NAMES, ROLE_NAMES, _safe_href, as_drill, header_safe
from vigie.models import OutboxMessage
from vigie.settings import Member, Settings
from warehouse.drills import drill_alert_ids
from warehouse.store import Store, StoredAlert

TEXT = {
    "fr": {
        "subject": "[Vigie][ESCALADE][{level}] {org} : « {topic} » sans prise en charge depuis "
        "{minutes} min",
        "intro": (
            "L’alerte {alert_id} sur « {topic} » (niveau {level}) a été envoyée au niveau "
            "{previous} de la cellule il y a {minutes} min et personne ne l’a prise en charge. "
            "Elle vous est transmise."
        ),
        "why": "Pourquoi",
        "stories": "Principaux articles",
        "ack": (
            'Pour la prendre en charge : vigie ack {alert_id} --by "Votre nom" '
            "(ou le formulaire de l’alerte dans Prefect). Sans prise en charge, elle montera "
            "encore d’un niveau dans {minutes} min."
        ),
        "ack_top": 'Pour la prendre en charge : vigie ack {alert_id} --by "Votre nom".',
        "told": "Déjà prévenus",
    },
    "en": {
        "subject": "[Vigie][ESCALATION][{level}] {org}: “{topic}” not acknowledged for "
        "{minutes} min",
        "intro": (
            "Alert {alert_id} on “{topic}” (level {level}) went to level {previous} of the cell "
            "{minutes} min ago and nobody took charge of it. It is passed on to you."
        ),
        "why": "Why",
        "stories": "Top stories",
        "ack": (
            'To take charge: vigie ack {alert_id} --by "Your name" (or the alert\'s form in '
            "Prefect). Unacknowledged, it goes one level up again in {minutes} min."
        ),
        "ack_top": 'To take charge: vigie ack {alert_id} --by "Your name".',
        "told": "Already told",
    },
}


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
    """The email to the next level: the alert, why, its stories, who was told, how to ack."""
    language = settings.organisation.language
    text = TEXT[language]
    minutes = settings.escalation.delay_minutes
    level = LEVEL_NAMES[language].get(alert.level, alert.level.upper())
    values = {
        "org": settings.organisation.name,
        "topic": alert.topic,
        "level": level,
        "alert_id": alert.alert_id,
        "previous": paging.from_level,
        "minutes": minutes,
    }
    subject = header_safe(text["subject"].format(**values))
    has_higher = next_level(settings.cell.members, paging.to_level) is not None
    ack = (text["ack"] if has_higher else text["ack_top"]).format(**values)
    stories_html, stories_text = [], []
    for item in top_mentions[:5]:
        title = str(item.get("title") or "")[:300]
        href = _safe_href(str(item.get("url") or ""))
        source = str(item.get("source") or "")[:120]
        linked = f'<a href="{href}">{html.escape(title)}</a>' if href else html.escape(title)
        stories_html.append(f"<li>{linked} — {html.escape(source)}</li>")
        stories_text.append(f"- {title} — {source} {item.get('url') or ''}".rstrip())
    told_lines = [f"{m.name} ({ROLE_NAMES[language].get(m.role, m.role)}, {m.email})" for m in told]
    body = (
        '<html><body style="font-family:sans-serif;color:#222">'
        f'<p style="font-size:16px">{html.escape(text["intro"].format(**values))}</p>'
        f"<h3>{html.escape(text['why'])}</h3><p>{html.escape(reason)}</p>"
        + (
            f"<h3>{html.escape(text['stories'])}</h3><ul>{''.join(stories_html)}</ul>"
            if stories_html
            else ""
        )
        + f"<h3>{html.escape(text['told'])}</h3><ul>"
        + "".join(f"<li>{html.escape(line)}</li>" for line in told_lines)
        + f'</ul><p style="font-weight:bold">{html.escape(ack)}</p></body></html>'
    )
    plain = "\n\n".join(
        [
            text["intro"].format(**values),
            f"{text['why']}: {reason}",
            *([text["stories"] + ":\n" + "\n".join(stories_text)] if stories_text else []),
            text["told"] + ":\n" + "\n".join(f"- {line}" for line in told_lines),
            ack,
        ]
    )
    return OutboxMessage(
        message_id=f"{alert.alert_id}.escalation.L{paging.to_level}",
        kind="escalation",
        recipients=paging.recipients,
        subject=subject,
        html=body,
        alert_id=alert.alert_id,
        text=plain,
        critical=True,
    )


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
