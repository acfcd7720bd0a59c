"""Notification: render emails into the outbox, then hand the outbox to SMTP with yagmail.

Emails are never sent straight from detection. They are rendered into the `outbox` table in the
same transaction that opens the alert, with a deterministic id; `tasks.notify.delivery` sends each
pending row exactly once (claimed before SMTP, marked sent at once), holds what may wait and
retries what the server refused.
Everything that came from a feed is HTML-escaped; headers are stripped of control characters.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import smtplib
import socket
import ssl
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import yagmail

from tasks.detect.breaking import StoryAssessment
from tasks.detect.signals import Severity
from tasks.notify.failures import read_failure
from tasks.notify.rendering import LOCALES, Texts, catalogue, render, safe_href
from vigie.models import HealthChange, InlineImage, OutboxMessage, VolumeSignal
from vigie.settings import Email, Member, Secrets, Settings

MAX_SUBJECT_CHARS = 200

# The catalogue's names, as the other notices still read them (tasks/notify/catalogue).
LEVEL_NAMES = {language: dict(catalogue(language)["levels"]) for language in LOCALES}
ROLE_NAMES = {language: dict(catalogue(language)["roles"]) for language in LOCALES}
TEXT = {
    language: {key: str(catalogue(language)["alert"][key]) for key in ("drill", "drill_tag")}
    for language in LOCALES
}


def header_safe(value: str, max_chars: int = MAX_SUBJECT_CHARS) -> str:
    """A single-line header value: control characters (CR, LF, bidi overrides) become spaces."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in value
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= max_chars else cleaned[: max_chars - 1] + "…"


def _safe_href(url: str) -> str | None:
    return html.escape(url, quote=True) if url.lower().startswith(("http://", "https://")) else None


def _tel(phone: str) -> str:
    """A phone number as a `tel:` link wants it: the digits and a leading +."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" if phone.strip().startswith("+") else "") + digits


def duty_entries(
    settings: Settings, members: Sequence[Member], texts: Texts
) -> list[dict[str, str | None]]:
    """Each member on duty as the emails list them: role, phone, address, where they may
    answer, and their backup with the backup's phone."""
    entries: list[dict[str, str | None]] = []
    for member in members:
        platforms = ", ".join(member.platforms)
        backup = settings.member(member.backup) if member.backup else None
        if backup is not None and backup.phone:
            standing_in: str | None = texts(
                "duty.backup_phone", name=backup.name, phone=backup.phone
            )
        else:
            standing_in = texts("duty.backup", name=member.backup) if member.backup else None
        entries.append(
            {
                "name": member.name,
                "role": texts.get("roles", member.role),
                "email": member.email,
                "phone": member.phone,
                "tel": _tel(member.phone) if member.phone else None,
                "rights": (
                    texts("duty.authorised", platforms=platforms)
                    if platforms
                    else texts("duty.not_authorised")
                ),
                "backup": standing_in,
            }
        )
    return entries


def first_steps(settings: Settings, texts: Texts) -> list[str]:
    """ "What to do now", from docs/runbook.md: convene the cell, a holding statement, who speaks
    where (the members' platforms), read the evidence, incident mode if it grows."""
    speakers = [
        texts("todo.speaker", name=m.name, platforms=texts.listing(m.platforms))
        for m in settings.cell.members
        if m.platforms
    ]
    separator = " ; " if texts.language == "fr" else "; "
    who = (
        texts("todo.speakers", speakers=separator.join(speakers), org=settings.organisation.name)
        if speakers
        else texts("todo.no_speaker")
    )
    return [
        texts("todo.convene"),
        texts("todo.holding"),
        who,
        texts("todo.read"),
        texts("todo.incident"),
    ]


def crisis_words(severity: Severity | None) -> list[str]:
    """The crisis terms of an alert as the mentions write them ("hospitalisé", not the lexicon's
    "hospitalis*"); a term whose written form is unknown is left out rather than shown as a
    stem."""
    if severity is None:
        return []
    terms = severity.evidence.get("crisis_terms")
    written = severity.evidence.get("crisis_words")
    if not isinstance(terms, dict) or not isinstance(written, dict):
        return []
    words = [str(written[term]) for term in terms if term in written]
    return list(dict.fromkeys(words))


def _window_words(texts: Texts, start: datetime, end: datetime) -> tuple[str, str]:
    """A window's start and end as a sentence says them: the end's time alone on the same
    day."""
    zone = texts.zone
    same_day = start.astimezone(zone).date() == end.astimezone(zone).date()
    return texts.when(start), texts.time(end) if same_day else texts.when(end)


def _volume_facts(
    settings: Settings, texts: Texts, signal: VolumeSignal, severity: Severity | None
) -> list[str]:
    minutes = settings.detection.window_minutes
    start, end = _window_words(texts, signal.window_start, signal.window_end)
    facts = [
        texts(
            "alert.what",
            count=texts.number(signal.current, 0),
            start=start,
            end=end,
            zone=texts.zone_name(),
            usual=texts.number(signal.baseline_median),
            minutes=minutes,
        )
    ]
    if signal.baseline_median >= 0.5:
        ratio = signal.current / signal.baseline_median
        if ratio >= 1.5:
            facts.append(
                texts("alert.what_times", ratio=texts.number(ratio, 0 if ratio >= 10 else 1))
            )
    else:
        facts.append(texts("alert.what_none_usually"))
    return facts + _evidence_facts(texts, severity)


def _evidence_facts(texts: Texts, severity: Severity | None) -> list[str]:
    """Which outlets, which words, what tone: the evidence said plainly."""
    if severity is None:
        return []
    facts = []
    outlets = severity.evidence.get("major_outlets")
    if isinstance(outlets, list) and outlets:
        facts.append(texts("alert.outlets", outlets=", ".join(str(o) for o in outlets)))
    words = crisis_words(severity)
    if words:
        facts.append(texts("alert.terms", terms=", ".join(words)))
    negative, mentions = severity.evidence.get("negative"), severity.evidence.get("mentions")
    if (
        isinstance(negative, int)
        and isinstance(mentions, int)
        and negative
        and severity.contributions.get("negativity", 0) > 0
    ):
        facts.append(
            texts(
                "alert.negative", negative=texts.number(negative), mentions=texts.number(mentions)
            )
        )
    return facts


def _details(
    texts: Texts,
    signal: VolumeSignal,
    severity: Severity | None,
    story: StoryAssessment | None,
) -> list[str | list[str]]:
    """The statistics, for the "Détails" part at the end: severity and its parts, the volume's
    deviation, the story's spread."""
    details: list[str | list[str]] = []
    if severity is not None:
        details.append(texts("details.severity", score=texts.number(severity.score)))
        separator = " : " if texts.language == "fr" else ": "
        details.append(
            [
                f"{texts.get('signals', name)}{separator}{texts.number(value)}"
                for name, value in sorted(severity.contributions.items(), key=lambda kv: -kv[1])
                if value > 0
            ]
        )
    details.append(
        texts(
            "details.volume",
            count=texts.number(signal.current, 0),
            median=texts.number(signal.baseline_median),
            z=texts.number(signal.z),
            score=texts.number(signal.score, 2),
        )
    )
    if story is not None:
        details.append(
            texts(
                "details.story",
                count=texts.number(story.sources, 0),
                usual=texts.number(story.usual_spread),
                needed=texts.number(story.needed),
            )
        )
    return details


def render_alert_email(
    settings: Settings,
    *,
    alert_id: str,
    signal: VolumeSignal,
    level: str,
    top_mentions: Sequence[dict[str, Any]],
    run_url: str | None,
    severity: Severity | None = None,
    chart_cid: str | None = None,
    ack_url: str | None = None,
    drill: bool = False,
    story: StoryAssessment | None = None,
) -> tuple[str, str]:
    """The subject and HTML body of an alert, in the organisation's language
    (templates/alert.html.j2).

    Plain words first (what is happening, how big, since when, which outlets and words), how to
    take charge, what to do now, who is on duty with phones and backups, the evidence, and the
    statistics last. `chart_cid` names the inline volume chart, `ack_url` the Prefect run
    waiting for an acknowledgement; a `drill` is marked as an exercise in the subject and at
    the top. A breaking `story`'s alert names the story, links it and lists its sources.
    """
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    minutes = settings.detection.window_minutes
    topic = settings.watch_label(signal.topic)
    level_name = texts.get("levels", level)
    subject = header_safe(
        (texts("alert.drill_tag") + " " if drill else "")
        + texts(
            "alert.story_subject" if story else "alert.subject",
            level=level_name,
            org=settings.organisation.name,
            topic=topic,
            title=header_safe(story.title, 100) if story else "",
            count=texts.number(story.sources if story else signal.current, 0),
            minutes=minutes,
        )
    )
    if story:
        start, end = _window_words(texts, story.window_start, story.window_end)
        facts = [
            texts(
                "alert.story_what",
                count=texts.number(story.sources, 0),
                start=start,
                end=end,
                zone=texts.zone_name(),
                topic=topic,
                usual=texts.number(story.usual_spread),
                minutes=minutes,
            ),
            *_evidence_facts(texts, severity),
        ]
        heading = texts("alert.story_heading", topic=topic, title=story.title)
        story_view: dict[str, Any] | None = {
            "title": story.title,
            "href": safe_href(story.url),
            "outlets": [(source, safe_href(url)) for source, url in story.outlets],
        }
    else:
        facts = _volume_facts(settings, texts, signal, severity)
        heading = texts("alert.heading", topic=topic)
        story_view = None
    mentions = [
        {
            "title": mention["title"],
            "href": safe_href(mention["url"]),
            "source": mention["source"],
            "when": texts.when(mention["published_at"]),
            "copies": (
                texts("alert.copies", n=texts.number(mention["copies"], 0))
                if mention["copies"] > 1
                else None
            ),
        }
        for mention in top_mentions
    ]
    body = render(
        "alert.html.j2",
        tx=texts,
        drill=drill,
        level_name=level_name,
        heading=heading,
        org=settings.organisation.name,
        facts=facts,
        ack_href=safe_href(ack_url),
        alert_id=alert_id,
        todo=first_steps(settings, texts),
        duty_title=texts("duty.first_level"),
        on_duty=duty_entries(settings, settings.first_level, texts),
        charter=settings.cell.charter,
        chart_cid=chart_cid,
        story=story_view,
        mentions=mentions,
        run_href=safe_href(run_url),
        details=_details(texts, signal, severity, story),
    )
    return subject, body


def alert_message(
    settings: Settings,
    *,
    alert_id: str,
    signal: VolumeSignal,
    level: str,
    top_mentions: Sequence[dict[str, Any]],
    run_url: str | None,
    severity: Severity | None = None,
    chart: InlineImage | None = None,
    ack_url: str | None = None,
    drill: bool = False,
    story: StoryAssessment | None = None,
) -> OutboxMessage:
    """The outbox row that tells the first escalation level an alert was opened."""
    subject, body = render_alert_email(
        settings,
        alert_id=alert_id,
        signal=signal,
        level=level,
        top_mentions=top_mentions,
        run_url=run_url,
        severity=severity,
        chart_cid=chart.cid if chart else None,
        ack_url=ack_url,
        drill=drill,
        story=story,
    )
    return OutboxMessage(
        message_id=f"{alert_id}.opened",
        kind="alert",
        recipients=tuple(m.email for m in settings.first_level),
        subject=subject,
        html=body,
        alert_id=alert_id,
        images=(chart,) if chart else (),
        critical=True,  # an alert never waits for quiet hours or a cap
        drill=drill,
    )


SmtpFactory = Callable[[Email, Secrets], Any]


def smtp_client(email: Email, secrets: Secrets) -> yagmail.SMTP:
    """A yagmail client for the configured server; certificates are always verified."""
    context = ssl.create_default_context(cafile=str(email.ca_file) if email.ca_file else None)
    options: dict[str, Any] = {
        "user": {email.sender: email.sender_name},
        "host": email.host,
        "port": email.port,
        "timeout": email.timeout_s,
        "smtp_ssl": email.security == "ssl",
        # yagmail's default STARTTLS does not verify the certificate (STACK.md gotcha 18).
        "smtp_starttls": {"context": context} if email.security == "starttls" else False,
    }
    if email.security == "ssl":
        options["context"] = context
    if email.username:
        password = secrets.smtp_password.get_secret_value() if secrets.smtp_password else ""
        options["password"] = password  # always explicit: yagmail would try a keyring
    else:
        options["smtp_skip_login"] = True
    return yagmail.SMTP(**options)


def _describe_smtp_error(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        detail = (
            err.smtp_error.decode("utf-8", "replace")
            if isinstance(err.smtp_error, bytes)
            else str(err.smtp_error)
        )
        return f"SMTP {err.smtp_code}: {header_safe(detail, 200)}"
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        # The server's answer for the first recipient says why (relay denied, unknown user).
        first = next(iter(err.recipients.values()), None)
        if first is None:
            return "every recipient was refused"
        code, answer = first
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
        return f"every recipient was refused (SMTP {code}: {header_safe(text, 200)})"
    return f"{type(err).__name__}: {header_safe(str(err), 200)}"


_SMTP_ERRORS = (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError)


def close_smtp(client: yagmail.SMTP | None) -> None:
    """End an SMTP conversation in whatever state it is (a server that dropped it included)."""
    if client is not None:
        with contextlib.suppress(*_SMTP_ERRORS, AttributeError):
            client.close()


# The notices' texts, from the catalogue (tasks/notify/catalogue).
QUALITY_TEXT = {language: dict(catalogue(language)["quality"]) for language in LOCALES}


def quality_notice(
    settings: Settings,
    *,
    source: str,
    transition: str,
    failed: int,
    total: int,
    reasons: Sequence[str],
    now: datetime,
) -> OutboxMessage:
    """The operators' notice that a source became degraded or recovered (sent once each)."""
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    text = QUALITY_TEXT[language]
    subject = header_safe(text[f"{transition}_subject"].format(source=source))
    body = render(
        "quality.html.j2",
        tx=texts,
        sentence=text[transition].format(
            source=source, failed=texts.number(failed, 0), total=texts.number(total, 0)
        ),
        reasons=list(reasons) if transition == "degraded" else [],
    )
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    return OutboxMessage(
        message_id=f"quality.{transition}.{key}.{now:%Y%m%dT%H%M%S}",
        kind="quality",
        recipients=settings.source_notice_recipients,
        subject=subject,
        html=body,
    )


HEALTH_TEXT: dict[str, dict[str, Any]] = {
    language: dict(catalogue(language)["health"]) for language in LOCALES
}


def _span(seconds: float, units: Sequence[str]) -> str:
    minutes, hours, days = units
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} {days}"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} {hours}"
    return f"{max(seconds, 60) / 60:.0f} {minutes}"


def failure_words(error: str | None, language: str) -> str:
    """A recorded collection error said plainly in `language` (the kind of failure, not the
    technical text, which the notice keeps as a details line)."""
    failure = read_failure(error)
    words = HEALTH_TEXT[language]["why"]
    status = failure.http_status
    if status is None:
        return str(words[failure.kind if failure.kind != "http_status" else "other"])
    if status in (404, 410):
        key = "http_404"
    elif status in (401, 403, 407):
        key = "http_auth"
    elif status == 429:
        key = "http_429"
    elif status >= 500:
        key = "http_5xx"
    else:
        key = "http_other"
    return str(words[key]).format(status=status)


def _health_line(
    change: HealthChange, language: str, local: Callable[[datetime], str], now: datetime
) -> dict[str, str | None]:
    text = HEALTH_TEXT[language]
    condition = change.condition
    state = change.verdict.state
    never = condition.last_ok_at is None
    error = condition.last_error
    key: str = state
    if state in ("failing", "not_a_feed") and never:
        key = f"{state}_never"
    elif state == "silent" and condition.consecutive_failures:
        key = "silent_failing"
    age = (now - condition.newest_entry_at).total_seconds() if condition.newest_entry_at else 0.0
    sentence = text["line"][key].format(
        last_ok=local(condition.last_ok_at) if condition.last_ok_at else "",
        failures=Texts(language).plural("health.failures", condition.consecutive_failures),
        why=failure_words(error, language),
        age=_span(age, text["units"]),
        gap=_span(condition.entry_gap_s or 0.0, text["units"]),
    )
    details = (
        text["details"].format(error=header_safe(error, 300)) if error and state != "ok" else None
    )
    return {"source": change.source, "sentence": sentence, "details": details}


def source_health_notice(
    settings: Settings,
    changes: Sequence[HealthChange],
    *,
    now: datetime,
    network_down: bool = False,
) -> OutboxMessage:
    """The operators' one notice of a cycle: every source that stopped watching, or recovered.

    In the organisation's language and time zone; a source that has never answered is told
    apart from one that stopped; `network_down` (every source fails to connect) puts the
    machine's network first. The message id names the changes and the moment, so a rerun of
    the same cycle queues nothing new.
    """
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    text = HEALTH_TEXT[language]
    problems = [c for c in changes if c.verdict.state != "ok"]
    recovered = [c for c in changes if c.verdict.state == "ok"]
    if network_down:
        subject = text["subject_network"]
    elif len(changes) == 1:
        change = changes[0]
        state = change.verdict.state
        never = change.condition.last_ok_at is None and state in ("failing", "not_a_feed")
        subject = text["subject"][f"{state}_never" if never else state].format(source=change.source)
    else:
        parts = []
        if problems:
            parts.append(texts.plural("health.to_check", len(problems)))
        if recovered:
            parts.append(texts.plural("health.recovered", len(recovered)))
        subject = text["subject_many"].format(parts=", ".join(parts))
    groups = [
        (text[heading], [_health_line(c, language, texts.when, now) for c in group])
        for heading, group in (("heading_problems", problems), ("heading_recovered", recovered))
        if group
    ]
    body = render(
        "source_health.html.j2",
        tx=texts,
        network_down=network_down,
        seen=text["seen"].format(when=texts.when(now), zone=texts.zone_name()),
        groups=groups,
        problems=bool(problems),
    )
    key = hashlib.sha256(
        "\n".join(f"{c.source}\t{c.verdict.state}" for c in changes).encode("utf-8")
    ).hexdigest()[:12]
    return OutboxMessage(
        message_id=f"health.{now:%Y%m%dT%H%M%S}.{key}",
        kind="source_health",
        recipients=settings.source_notice_recipients,
        subject=header_safe(subject),
        html=body,
    )


def as_drill(message: OutboxMessage, language: str) -> OutboxMessage:
    """The same email marked as part of a drill: tag in the subject, banner on top, header.

    For mail rendered without knowing it belongs to a drill (an escalation of a drill alert).
    """
    text = TEXT[language]
    if message.drill:
        return message
    style = "background:#fff3cd;border:2px solid #c58a00;padding:8px;font-weight:bold"
    return replace(
        with_banner(message, text["drill"], style),
        subject=header_safe(f"{text['drill_tag']} {message.subject}"),
        drill=True,
    )


def with_banner(message: OutboxMessage, line: str, style: str) -> OutboxMessage:
    """`message` with `line` on top: a styled paragraph first in the HTML body, and the first
    paragraph of the plain text."""
    banner = f'<p style="{style}">{html.escape(line)}</p>'
    body = message.html
    marker = body.find(">", body.find("<body")) + 1 if "<body" in body else 0
    return replace(
        message,
        html=body[:marker] + banner + body[marker:],
        text=f"{line}\n\n{message.text}" if message.text else "",
    )
