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
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim

from tasks.load import send_pending
from tasks.notify.emails import ROLE_NAMES, header_safe
from vigie.errors import ConfigError
from vigie.models import OutboxMessage
from vigie.settings import Member, Secrets, Settings, Team
from warehouse.connection import open_warehouse
from warehouse.store import Store

KIND = "readiness"
LANGUAGE_WORDS = {
    "fr": {"fr": "français", "en": "anglais"},
    "en": {"fr": "French", "en": "English"},
}
READINESS_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "subject": "[Vigie] La cellule de crise de {org} est prête — rappel pour {team}",
        "heading": "La cellule de crise de {org} est prête",
        "intro": (
            "Ce message rappelle à l’équipe « {team} » qu’une cellule de crise est en place et "
            "prête à agir si un sujet qui concerne {org} s’emballe dans les médias ou sur les "
            "réseaux sociaux. Gardez-le à portée de main."
        ),
        "who": "Qui est dans la cellule",
        "level": "Niveau {level}",
        "level_note": "(alerté en premier)",
        "backup": "suppléance : {name}",
        "speaks": "langues : {languages}",
        "reach": "Comment la joindre",
        "reach_address": "Écrivez à l’adresse de la cellule : {address}.",
        "reach_first": "Écrivez aux membres du premier niveau : {addresses}.",
        "reach_phone": "En cas d’urgence, appelez : {phones}.",
        "see": "Si vous voyez quelque chose",
        "see_1": "Transférez-le sans attendre à la cellule, avec le lien et une capture d’écran.",
        "see_2": "Notez où et quand vous l’avez vu : plateforme, compte, date et heure.",
        "see_3": "Ne supprimez rien : ni message, ni commentaire, ni publication.",
        "see_4": (
            "Dans le doute, écrivez quand même : mieux vaut dix signalements de trop qu’une "
            "crise vue trop tard."
        ),
        "dont": "Ce qu’il ne faut pas faire",
        "dont_1": (
            "Ne répondez pas au nom de {org}, ni en public ni en privé, si vous n’y êtes pas "
            "autorisé·e."
        ),
        "dont_2": (
            "Ne commentez pas, ne partagez pas et n’aimez pas les publications en cause, même "
            "pour défendre {org}."
        ),
        "dont_3": "Ne répondez pas aux journalistes : orientez-les vers la cellule.",
        "authorised": "Seules ces personnes sont autorisées à répondre au nom de {org} :",
        "nobody_authorised": (
            "Personne n’est autorisé à répondre en ligne au nom de {org} : tout passe par la "
            "cellule."
        ),
        "platform": "{platform} : {names}",
        "charter": "Charte d’engagement",
        "footer": "Rappel envoyé par Vigie à l’équipe « {team} ».",
    },
    "en": {
        "subject": "[Vigie] {org}'s crisis cell is ready — reminder for {team}",
        "heading": "{org}'s crisis cell is ready",
        "intro": (
            "This message reminds the team “{team}” that a crisis cell is in place, ready to act "
            "if a story about {org} flares up in the media or on social networks. Keep it at "
            "hand."
        ),
        "who": "Who is in the cell",
        "level": "Level {level}",
        "level_note": "(alerted first)",
        "backup": "backup: {name}",
        "speaks": "languages: {languages}",
        "reach": "How to reach it",
        "reach_address": "Write to the cell's address: {address}.",
        "reach_first": "Write to the members of the first level: {addresses}.",
        "reach_phone": "If it is urgent, call: {phones}.",
        "see": "When you see something",
        "see_1": "Forward it to the cell at once, with the link and a screenshot.",
        "see_2": "Note where and when you saw it: platform, account, date and time.",
        "see_3": "Do not delete anything: no message, comment or post.",
        "see_4": (
            "When in doubt, write anyway: ten needless reports are better than a crisis seen "
            "too late."
        ),
        "dont": "What not to do",
        "dont_1": (
            "Do not answer in the name of {org}, in public or in private, unless you are "
            "authorised to."
        ),
        "dont_2": ("Do not comment on, share or like the posts in question, even to defend {org}."),
        "dont_3": "Do not answer journalists: refer them to the cell.",
        "authorised": "Only these people are authorised to answer in the name of {org}:",
        "nobody_authorised": (
            "Nobody is authorised to answer online in the name of {org}: everything goes "
            "through the cell."
        ),
        "platform": "{platform}: {names}",
        "charter": "Rules of engagement (charter)",
        "footer": "Reminder sent by Vigie to the team “{team}”.",
    },
}

_BODY = (
    "font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#1a1a1a;"
    "max-width:640px;margin:0 auto;padding:16px"
)
_H2 = "font-size:20px;color:#0b3d5c;margin:0 0 12px"
_H3 = "font-size:16px;color:#0b3d5c;margin:20px 0 6px;border-bottom:1px solid #d0d7de"
_SMALL = "font-size:12px;color:#57606a"


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
    """The readiness reminder for one team, in its language, as HTML with a plain-text twin."""
    language = settings.team_language(team)
    text = READINESS_TEXT[language]
    org = settings.organisation.name
    esc = html.escape

    levels = sorted({m.level for m in settings.cell.members})
    lowest = levels[0] if levels else None
    html_levels: list[str] = []
    text_levels: list[str] = []
    for level in levels:
        label = text["level"].format(level=level)
        if level == lowest:
            label += " " + text["level_note"]
        items_html = []
        items_text = []
        for member in settings.level_members(level):
            name, details = _member_parts(settings, member, language)
            shown = [
                f'<a href="mailto:{esc(d, quote=True)}" style="color:#0b5cad">{esc(d)}</a>'
                if d == member.email
                else esc(d)
                for d in details
            ]
            items_html.append(f"<li><strong>{esc(name)}</strong> — {' · '.join(shown)}</li>")
            items_text.append(f"  - {name} — {' · '.join(details)}")
        html_levels.append(
            f'<p style="margin:8px 0 2px"><strong>{esc(label)}</strong></p>'
            f'<ul style="margin:0;padding-left:20px">{"".join(items_html)}</ul>'
        )
        text_levels.append(f"{label}\n" + "\n".join(items_text))

    addresses, phones = _contacts(settings)
    joined = ", ".join(addresses)
    reach = [
        text["reach_address"].format(address=joined)
        if settings.cell.address
        else text["reach_first"].format(addresses=joined)
    ]
    if phones:
        reach.append(text["reach_phone"].format(phones=", ".join(phones)))
    see = [text[f"see_{i}"] for i in range(1, 5)]
    dont = [text[f"dont_{i}"].format(org=org) for i in range(1, 4)]
    authorised = _authorised(settings)
    rights = [
        text["platform"].format(platform=platform, names=", ".join(names))
        for platform, names in authorised.items()
    ]
    rights_intro = (text["authorised"] if authorised else text["nobody_authorised"]).format(org=org)
    charter = settings.cell.charter

    def ul(items: Sequence[str], tag: str = "ul") -> str:
        return (
            f'<{tag} style="margin:0;padding-left:20px">'
            + "".join(f"<li>{esc(item)}</li>" for item in items)
            + f"</{tag}>"
        )

    def h3(title: str) -> str:
        return f'<h3 style="{_H3}">{esc(title)}</h3>'

    mailto = ", ".join(
        f'<a href="mailto:{esc(a, quote=True)}" style="color:#0b5cad">{esc(a)}</a>'
        for a in addresses
    )
    template = text["reach_address"] if settings.cell.address else text["reach_first"]
    # Our own template is escaped, then given the links (already escaped) in its placeholders.
    reach_html = f"<p>{esc(template).format(address=mailto, addresses=mailto)}</p>"
    if phones:
        reach_html += f"<p>{esc(reach[1])}</p>"
    charter_html = f"{h3(text['charter'])}{ul(charter, 'ol')}" if charter else ""
    body = (
        '<!DOCTYPE html><html lang="' + language + '"><head><meta charset="utf-8">'
        f"<title>{esc(text['heading'].format(org=org))}</title></head>"
        f'<body style="{_BODY}">'
        f'<h2 style="{_H2}">{esc(text["heading"].format(org=org))}</h2>'
        f"<p>{esc(text['intro'].format(team=team.name, org=org))}</p>"
        f"{h3(text['who'])}{''.join(html_levels)}"
        f"{h3(text['reach'])}{reach_html}"
        f"{h3(text['see'])}{ul(see)}"
        f"{h3(text['dont'])}{ul(dont)}"
        f'<p style="margin:10px 0 2px">{esc(rights_intro)}</p>{ul(rights) if rights else ""}'
        f"{charter_html}"
        f'<p style="{_SMALL};margin-top:24px">{esc(text["footer"].format(team=team.name))}</p>'
        "</body></html>"
    )

    def section(title: str, lines: Sequence[str]) -> str:
        return f"{title}\n{'-' * len(title)}\n" + "\n".join(lines)

    heading = text["heading"].format(org=org)
    plain = "\n\n".join(
        [
            f"{heading}\n{'=' * len(heading)}",
            text["intro"].format(team=team.name, org=org),
            section(text["who"], text_levels),
            section(text["reach"], reach),
            section(text["see"], [f"- {line}" for line in see]),
            section(
                text["dont"],
                [f"- {line}" for line in dont]
                + ["", rights_intro]
                + [f"  - {line}" for line in rights],
            ),
            *(
                [section(text["charter"], [f"{i}. {r}" for i, r in enumerate(charter, 1)])]
                if charter
                else []
            ),
            text["footer"].format(team=team.name),
        ]
    )
    return OutboxMessage(
        message_id=message_id(settings, team, now, forced=forced),
        kind=KIND,
        recipients=tuple(team.emails),
        subject=header_safe(text["subject"].format(org=org, team=team.name)),
        html=body,
        text=plain + "\n",
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
