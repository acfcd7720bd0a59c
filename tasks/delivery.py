"""Delivery of the outbox: each email sent exactly once, held when it may wait, retried when the
server refuses it.

The outbox row is the truth. Before a message is handed to SMTP its row is *claimed*
(`sending_at`, committed); once the server accepts it the row is marked sent at once. A claim
found by the next delivery means a process died between the two: the server may have accepted
the message, so it is marked *uncertain* and never sent again by itself (`vigie status` lists it;
`vigie outbox resend ID` sends it again once someone has checked). A refusal or an unreachable
server releases the claim and schedules the next attempt with a growing back-off.

Critical mail (alerts, escalations) always goes at once. Other mail respects the quiet hours
(held until they end) and a per-recipient hourly cap (held until the hour has passed, with one
"more were held" note to that recipient).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from zoneinfo import ZoneInfo

from tasks.notify import (
    _SMTP_ERRORS,
    SmtpFactory,
    _describe_smtp_error,
    header_safe,
    smtp_client,
)
from vigie.models import OutboxMessage
from vigie.settings import Email, Secrets, parse_quiet_hours
from warehouse.store import Store

MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
HELD_NOTE_KIND = "held_note"


@dataclass(frozen=True, slots=True)
class PendingMail:
    message: OutboxMessage
    attempts: int


@dataclass(frozen=True, slots=True)
class Hold:
    message_id: str
    until: datetime
    reason: str  # "quiet hours" | "hourly cap"


@dataclass
class DeliveryPlan:
    send: list[OutboxMessage] = field(default_factory=list)
    hold: list[Hold] = field(default_factory=list)
    notes: list[OutboxMessage] = field(default_factory=list)


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)


def quiet_until(quiet: tuple[time, time] | None, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours holding `now` end (aware UTC), or None outside quiet hours."""
    if quiet is None:
        return None
    start, end = quiet
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else clock >= start or clock < end
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(now.tzinfo)


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after `attempts` failed ones: 1, 2, 4 … minutes, at most 1 h."""
    wait: timedelta = BACKOFF_BASE * 2 ** min(max(0, attempts - 1), 10)
    return min(wait, BACKOFF_MAX)


def _held_note(recipient: str, count: int, hour_end: datetime, language: str) -> OutboxMessage:
    key = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:12]
    if language == "fr":
        subject = "[Vigie] Des messages ont été retenus"
        body = (
            f"{count} autre(s) message(s) non urgent(s) vous seront envoyés après "
            f"{hour_end:%H:%M} UTC : la limite horaire de messages par personne est atteinte. "
            "Les alertes de crise ne sont jamais retenues."
        )
    else:
        subject = "[Vigie] Some messages were held"
        body = (
            f"{count} more non-urgent message(s) will reach you after {hour_end:%H:%M} UTC: "
            "the hourly limit of messages per person was reached. Crisis alerts are never held."
        )
    return OutboxMessage(
        message_id=f"held.{key}.{hour_end:%Y%m%dT%H%M}",
        kind=HELD_NOTE_KIND,
        recipients=(recipient,),
        subject=subject,
        html=f'<html><body style="font-family:sans-serif"><p>{html.escape(body)}</p></body></html>',
        text=body,
    )


def plan_delivery(
    pending: Sequence[PendingMail],
    *,
    sent_last_hour: Mapping[str, list[datetime]],
    hourly_cap: int,
    quiet: tuple[time, time] | None,
    zone: ZoneInfo,
    language: str,
    now: datetime,
) -> DeliveryPlan:
    """Which pending messages go now, which wait (and until when), and which notes to add.

    Args:
        sent_last_hour: for each recipient, when non-critical mail was sent to them in the last
            hour (the cap counts those).
    """
    plan = DeliveryPlan()
    quiet_end = quiet_until(quiet, now, zone)
    counted = {r: sorted(times) for r, times in sent_last_hour.items()}
    held_per_recipient: dict[str, int] = {}
    for item in pending:
        message = item.message
        if message.critical:
            plan.send.append(message)
            continue
        if quiet_end is not None:
            plan.hold.append(Hold(message.message_id, quiet_end, "quiet hours"))
            continue
        if message.kind == HELD_NOTE_KIND:
            plan.send.append(message)
            continue
        full = [r for r in message.recipients if len(counted.get(r, [])) >= hourly_cap]
        if full:
            # The hour frees up when the oldest counted message of the fullest recipient is
            # an hour old.
            until = max(counted[r][-hourly_cap] for r in full) + timedelta(hours=1)
            plan.hold.append(Hold(message.message_id, until, "hourly cap"))
            for recipient in full:
                held_per_recipient[recipient] = held_per_recipient.get(recipient, 0) + 1
            continue
        plan.send.append(message)
        for recipient in message.recipients:
            counted.setdefault(recipient, []).append(now)
    for recipient, count in sorted(held_per_recipient.items()):
        hour_end = counted[recipient][-hourly_cap] + timedelta(hours=1)
        plan.notes.append(_held_note(recipient, count, hour_end, language))
    return plan


def text_from_html(body: str) -> str:
    """A rough plain-text version of an HTML body, for messages queued without one."""
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", body)
    body = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr|table|ul|ol)>", "\n", body)
    lines = (
        " ".join(line.split()) for line in html.unescape(re.sub(r"<[^>]*>", "", body)).split("\n")
    )
    return "\n".join(line for line in lines if line) + "\n"


def compose_email(
    message: OutboxMessage, *, sender: str, sender_name: str, now: datetime | None = None
) -> EmailMessage:
    """The MIME message: alternative[text/plain, related[text/html, image/png…]] (no related
    part without images), UTF-8, bodies quoted-printable (safe over any relay).

    The plain text is the message's own, or the HTML's text when it has none; headers are
    single-line; the Message-ID is derived from the outbox id, so a copy would be recognisable.
    """
    mime = EmailMessage(policy=SMTP)
    mime["From"] = email.utils.formataddr((header_safe(sender_name, 80), sender))
    mime["To"] = ", ".join(header_safe(r, 300) for r in message.recipients)
    mime["Subject"] = header_safe(message.subject)
    mime["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
    mime["Message-ID"] = f"<{header_safe(message.message_id, 300)}@vigie>"
    mime["X-Vigie-Message-Id"] = header_safe(message.message_id, 300)
    if message.drill:
        mime["X-Vigie-Drill"] = "yes"
    text = message.text or text_from_html(message.html)
    mime.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(message.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if message.images:
        # The HTML part becomes multipart/related[text/html, images] in place.
        html_part = mime.get_body(preferencelist=("html",))
        assert html_part is not None  # added just above
        for image in message.images:
            html_part.add_related(
                image.png,
                maintype="image",
                subtype="png",
                cid=f"<{image.cid}>",
                disposition="inline",
                filename=f"{image.cid}.png",
            )
    return mime


def deliver(
    *,
    email: Email,
    secrets: Secrets,
    now: datetime,
    language: str = "fr",
    timezone: str = "UTC",
    open_store: Callable[[], contextlib.AbstractContextManager[Store]],
    smtp_factory: SmtpFactory = smtp_client,
    on_accepted: Callable[[str], None] | None = None,
) -> DeliveryReport:
    """Send what may go now, hold the rest, recover claims a crash left behind.

    The warehouse is opened briefly around each step (never while SMTP talks). `on_accepted`
    is called after the server accepted a message and before it is marked sent (tests use it
    to kill the process exactly there).
    """
    report = DeliveryReport()
    email_settings = email
    with open_store() as store, store.transaction():
        report.uncertain = store.mark_uncertain_claims(now)
        pending = [PendingMail(m, a) for m, a in store.due_messages(MAX_ATTEMPTS, now)]
        plan = plan_delivery(
            pending,
            sent_last_hour=store.recent_sends(now - timedelta(hours=1)),
            hourly_cap=email_settings.hourly_cap,
            quiet=parse_quiet_hours(email_settings.quiet_hours)
            if email_settings.quiet_hours
            else None,
            zone=ZoneInfo(timezone),
            language=language,
            now=now,
        )
        for hold in plan.hold:
            store.hold_message(hold.message_id, hold.until, hold.reason)
            report.held[hold.message_id] = hold.reason
        for note in plan.notes:
            store.queue(note, now)
    to_send = plan.send + plan.notes
    if not to_send:
        return report
    client = None
    try:
        client = smtp_factory(email_settings, secrets)
        client.login()
    except _SMTP_ERRORS as err:
        reason = f"SMTP connection or login failed: {_describe_smtp_error(err)}"
        with open_store() as store:
            for message in to_send:
                store.release_claim(message.message_id, reason, now, backoff)
                report.failed[message.message_id] = reason
        return report
    try:
        for message in to_send:
            if not message.recipients:
                reason = "no recipients (is the crisis cell configured?)"
                with open_store() as store:
                    store.release_claim(message.message_id, reason, now, None)
                report.failed[message.message_id] = reason
                continue
            with open_store() as store:
                if not store.claim(message.message_id, now):
                    continue  # another sender took it, or it was sent meanwhile
            mime = compose_email(
                message,
                sender=email_settings.sender,
                sender_name=email_settings.sender_name,
                now=now,
            )
            try:
                client.smtp.sendmail(
                    email_settings.sender, list(message.recipients), mime.as_bytes()
                )
            except _SMTP_ERRORS as err:
                reason = _describe_smtp_error(err)
                with open_store() as store:
                    store.release_claim(message.message_id, reason, now, backoff)
                report.failed[message.message_id] = reason
                if isinstance(err, OSError) or "disconnected" in type(err).__name__.lower():
                    # The connection is gone: the rest waits for the next delivery.
                    for rest in to_send[to_send.index(message) + 1 :]:
                        with open_store() as store:
                            store.release_claim(rest.message_id, reason, now, backoff)
                        report.failed[rest.message_id] = reason
                    break
                continue
            if on_accepted is not None:
                on_accepted(message.message_id)
            with open_store() as store:
                store.mark_sent(message.message_id, now)
            report.sent.append(message.message_id)
    finally:
        with contextlib.suppress(*_SMTP_ERRORS, AttributeError):
            client.close()
    return report
