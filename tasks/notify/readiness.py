"""Readiness reminders (step 4): each internal team is told, on its cadence, that the crisis cell
exists, who is in it, how to reach it, and what to do and not do when they see something.

A team's cadence is a cron expression (`teams.cron`, default `schedule.readiness_cron`) read in
the organisation's time zone. Each occurrence opens a *period* that lasts until the next one; a
team gets one reminder per period. A team is due when the latest occurrence at or before now is
later than its last reminder, so a team never reminded is due at once (its current period has
not been served) and a rerun in the same period queues nothing. The message id names the team
and the period (`readiness.<team-hash>.<period start, UTC>`), so even two processes racing cannot
queue the same period twice. When the reminders were queued is read back from the outbox
(`Store.outbox_log`): no table of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from tasks.load import send_pending
from tasks.notify.emails import ROLE_NAMES, header_safe
from tasks.notify.rendering import LOCALES, Texts, catalogue, render
from vigie.errors import ConfigError
from vigie.models import OutboxMessage
from vigie.settings import Member, Secrets, Settings, Team
from warehouse.connection import open_warehouse
from warehouse.store import Store

KIND = "readiness"
# The reminder's texts, from the catalogue (tasks/notify/catalogue).
LANGUAGE_WORDS = {language: dict(catalogue(language)["language_names"]) for language in LOCALES}
READINESS_TEXT: dict[str, dict[str, str]] = {
    language: dict(catalogue(language)["readiness"]) for language in LOCALES
}


def team_key(team: Team) -> str:
    """A stable, header-safe key for a team (its name may hold anything)."""
    return hashlib.sha256(team.name.encode("utf-8")).hexdigest()[:12]


def period_start(settings: Settings, team: Team, now: datetime) -> datetime:
    """The latest occurrence of the team's cron at or before `now` (UTC): the period served."""
    zone = ZoneInfo(settings.organisation.timezone)
    after = (now.astimezone(zone) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    # cronsim in reverse yields occurrences strictly before its start: the next minute's start
    # includes an occurrence at `now`'s own minute.
    return next(CronSim(settings.team_cron(team), after, reverse=True)).astimezone(UTC)


def due_teams(
    settings: Settings, last_sent: Mapping[str, datetime | None], now: datetime
) -> list[Team]:
    """The teams whose current period has no reminder yet.

    `last_sent` maps a team's name to when its last reminder was queued (None or absent: never).
    """
    due = []
    for team in settings.teams:
        last = last_sent.get(team.name)
        if last is None or last < period_start(settings, team, now):
            due.append(team)
    return due


def last_reminders(
    settings: Settings, log: Sequence[tuple[str, datetime, datetime | None]]
) -> dict[str, datetime | None]:
    """When each team's last reminder was queued, from the outbox rows of kind readiness."""
    by_key: dict[str, datetime] = {}
    for message_id, created_at, _sent_at in log:
        parts = message_id.split(".")
        if len(parts) >= 3:
            key = parts[1]
            if key not in by_key or created_at > by_key[key]:
                by_key[key] = created_at
    return {team.name: by_key.get(team_key(team)) for team in settings.teams}


def message_id(settings: Settings, team: Team, now: datetime, *, forced: bool = False) -> str:
    """`readiness.<team>.<period start>`; a forced reminder also names its minute."""
    base = f"{KIND}.{team_key(team)}.{period_start(settings, team, now):%Y%m%dT%H%MZ}"
    return f"{base}.forced.{now.astimezone(UTC):%Y%m%dT%H%MZ}" if forced else base


def _member_parts(settings: Settings, member: Member, language: str) -> tuple[str, list[str]]:
    """A member's name and the details that follow it (role, email, phone, backup, languages)."""
    text = READINESS_TEXT[language]
    details = [ROLE_NAMES[language].get(member.role, member.role), member.email]
    if member.phone:
        details.append(member.phone)
    if member.backup:
        details.append(text["backup"].format(name=member.backup))
    spoken = ", ".join(LANGUAGE_WORDS[language][lang] for lang in settings.member_languages(member))
    details.append(text["speaks"].format(languages=spoken))
    return member.name, details


def _authorised(settings: Settings) -> dict[str, list[str]]:
    """Platform -> the members authorised to answer on it, in the config's order."""
    by_platform: dict[str, list[str]] = {}
    for member in settings.cell.members:
        for platform in member.platforms:
            by_platform.setdefault(platform, []).append(member.name)
    return by_platform


def _contacts(settings: Settings) -> tuple[list[str], list[str]]:
    """Where to forward things (the cell's address, else level 1) and the level-1 phones."""
    first = settings.first_level
    addresses = [settings.cell.address] if settings.cell.address else [m.email for m in first]
    phones = [f"{m.name} {m.phone}" for m in first if m.phone]
    return addresses, phones


def render_readiness(
    settings: Settings, team: Team, *, now: datetime, forced: bool = False
) -> OutboxMessage:
    """The readiness reminder for one team, in its language (templates/readiness.*.j2: HTML
    with a plain-text twin)."""
    language = settings.team_language(team)
    texts = Texts(language, settings.organisation.timezone)
    text = READINESS_TEXT[language]
    org = settings.organisation.name
    levels = sorted({m.level for m in settings.cell.members})
    shown_levels = []
    for level in levels:
        label = text["level"].format(level=level)
        if level == levels[0]:
            label += " " + text["level_note"]
        members = []
        for member in settings.level_members(level):
            name, details = _member_parts(settings, member, language)
            members.append({"name": name, "email": member.email, "details": details})
        shown_levels.append({"label": label, "members": members})
    addresses, phones = _contacts(settings)
    template = text["reach_address"] if settings.cell.address else text["reach_first"]
    placeholder = "{address}" if settings.cell.address else "{addresses}"
    reach_before, reach_after = template.split(placeholder, 1)
    authorised = _authorised(settings)
    heading = text["heading"].format(org=org)
    context = {
        "tx": texts,
        "language": language,
        "heading": heading,
        "intro": text["intro"].format(team=team.name, org=org),
        "levels": shown_levels,
        "addresses": addresses,
        "reach_before": reach_before,
        "reach_after": reach_after,
        "phones_line": text["reach_phone"].format(phones=", ".join(phones)) if phones else None,
        "see": [text[f"see_{i}"] for i in range(1, 5)],
        "dont": [text[f"dont_{i}"].format(org=org) for i in range(1, 4)],
        "rights_intro": (text["authorised"] if authorised else text["nobody_authorised"]).format(
            org=org
        ),
        "rights": [
            text["platform"].format(platform=platform, names=", ".join(names))
            for platform, names in authorised.items()
        ],
        "charter": settings.cell.charter,
        "footer": text["footer"].format(team=team.name),
    }
    return OutboxMessage(
        message_id=message_id(settings, team, now, forced=forced),
        kind=KIND,
        recipients=tuple(team.emails),
        subject=header_safe(text["subject"].format(org=org, team=team.name)),
        html=render("readiness.html.j2", **context),
        text=render("readiness.txt.j2", **context) + "\n",
    )


Outcome = Literal["sent", "failed", "queued", "already_sent", "already_queued"]


@dataclass(frozen=True, slots=True)
class TeamOutcome:
    team: str
    outcome: Outcome
    message_id: str | None
    detail: str = ""


def select_teams(settings: Settings, name: str | None) -> list[Team]:
    """Every team, or the one named (an unknown name is a configuration error)."""
    if name is None:
        return list(settings.teams)
    for team in settings.teams:
        if team.name == name:
            return [team]
    known = ", ".join(repr(t.name) for t in settings.teams) or "none configured"
    raise ConfigError(f"--team: no team named {name!r} (teams: {known})")


def send_readiness(
    path: Path,
    settings: Settings,
    secrets: Secrets,
    *,
    now: datetime,
    team: str | None = None,
    force: bool = False,
) -> list[TeamOutcome]:
    """Queue the due teams' reminders (every selected team with `force`), then send the outbox.

    Sending goes the way of every watch cycle (`send_pending`): whatever else is pending goes too.
    """
    selected = select_teams(settings, team)
    with open_warehouse(path) as con:
        store = Store(con)
        log = store.outbox_log(KIND)
        due = {t.name for t in due_teams(settings, last_reminders(settings, log), now)}
        queued: dict[str, str] = {}
        for candidate in selected:
            if force or candidate.name in due:
                message = render_readiness(settings, candidate, now=now, forced=force)
                store.queue(message, now)
                queued[candidate.name] = message.message_id
    report = send_pending(path, settings, secrets)
    with open_warehouse(path) as con:
        log = Store(con).outbox_log(KIND)
    outcomes = []
    for candidate in selected:
        key = team_key(candidate)
        mid = queued.get(candidate.name)
        if mid is None:
            served = [row for row in log if row[0].split(".")[1:2] == [key]]
            last = max(served, key=lambda row: row[1]) if served else None
            if last is not None and last[2] is not None:
                outcomes.append(
                    TeamOutcome(
                        candidate.name,
                        "already_sent",
                        last[0],
                        f"sent {last[2]:%Y-%m-%d %H:%M} UTC",
                    )
                )
            else:
                outcomes.append(
                    TeamOutcome(
                        candidate.name,
                        "already_queued",
                        last[0] if last else None,
                        "waiting in the outbox",
                    )
                )
        elif mid in report.sent:
            outcomes.append(TeamOutcome(candidate.name, "sent", mid))
        elif mid in report.failed:
            outcomes.append(TeamOutcome(candidate.name, "failed", mid, report.failed[mid]))
        else:
            outcomes.append(TeamOutcome(candidate.name, "queued", mid, "not sent yet"))
    return outcomes
