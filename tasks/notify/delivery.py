"""Delivery of the outbox: each email sent exactly once, held when it may wait, retried when the
server refuses it.

The outbox row is the truth. Before a message is handed to SMTP its row is *claimed* in the
name of one sender (host, process and a token of the delivery) for a lease that outlasts the
conversation (each conversation is cut at a limit made of the SMTP timeouts); once the server
accepts it the row is marked sent at once. A refusal or an unreachable server releases the
sender's own claim, and the message is due again: critical mail (alerts, escalations, notices
that the watch stopped, incident reports) at the next delivery, every cycle and escalation
check, however long the outage; other mail after a back-off that grows to an hour.

The outcome is *uncertain* when the whole message was handed over and no answer came (the
connection dropped, the reply timed out), or when a claim's sender is gone (its process ended,
or its lease is over; a live sender's claim is never judged dead). A missed crisis alert costs
more than a duplicate: an uncertain alert or escalation is sent once more, with the same
Message-ID and a line saying it is a second sending, and never a third time. Any other
uncertain message is not sent again by itself (`vigie status` and `vigie outbox list` show it;
`vigie outbox resend ID` sends it again once someone has checked).

Critical mail always goes at once. Other mail respects the quiet hours (held until they end)
and a per-recipient hourly cap (held until the hour has passed, with one "more were held" note
to that recipient).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import html
import os
import re
import smtplib
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from secrets import token_hex
from time import monotonic
from zoneinfo import ZoneInfo

from tasks.notify.emails import (
    _SMTP_ERRORS,
    SmtpFactory,
    _describe_smtp_error,
    close_smtp,
    header_safe,
    smtp_client,
    with_banner,
)
from tasks.notify.rendering import Texts
from vigie.models import OutboxMessage
from vigie.settings import Email, Secrets, parse_quiet_hours
from warehouse.store import Store

MAX_ATTEMPTS = 10  # critical mail is never given up: it is tried at every delivery
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
HELD_NOTE_KIND = "held_note"
# A missed crisis alert costs more than a duplicate: these kinds are sent once more, marked as
# a second sending, when the outcome of their sending is unknown; any other kind is not.
RESEND_ONCE_KINDS = ("alert", "escalation")
# Recording a message's outcome may wait for the warehouse lock (a minute at most).
LEASE_MARGIN = timedelta(minutes=2)
DIED_WHILE_SENDING = "delivery uncertain: the process sending it stopped before the server answered"
UNCERTAIN_REASON = "delivery uncertain: the whole message was handed over, no answer came"
SECOND_SENDING = {
    "fr": "Second envoi : le premier envoi de ce message n’a pas pu être confirmé.",
    "en": "Second sending: the first sending of this message could not be confirmed.",
}


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
    # Chat, push and SMS channels (tasks/notify/channels.py): "message_id@label" of each row.
    channels_sent: list[str] = field(default_factory=list)
    channels_failed: dict[str, str] = field(default_factory=dict)


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


def _held_note(
    recipient: str, count: int, hour_end: datetime, language: str, zone: ZoneInfo
) -> OutboxMessage:
    key = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:12]
    words = Texts(language, zone.key)
    subject = words("delivery.held_subject")
    body = words(
        "delivery.held_body",
        held=words.plural("counts.held", count),
        time=words.time(hour_end),
        zone=words.zone_name(),
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
        plan.notes.append(_held_note(recipient, count, hour_end, language, zone))
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


class DeliveryUncertain(Exception):
    """The whole message was handed to the server and no answer came (the connection dropped,
    the reply timed out, the conversation was cut at its limit): the server may have it."""


def second_sending(message: OutboxMessage, language: str) -> OutboxMessage:
    """The same message (same Message-ID) with a line on top saying it is a second sending."""
    line = SECOND_SENDING[language if language in SECOND_SENDING else "en"]
    return with_banner(message, line, "background:#eef3fb;border:1px solid #5b7db1;padding:6px")


def conversation_limit(email: Email, recipients: int) -> float:
    """The longest one message's SMTP conversation may last, in seconds: one timeout for each
    reply it waits for (MAIL, each RCPT, DATA, the end of the message) and one to write it. A
    server that answers each command within its timeout is never cut off; one that dribbles
    its replies is, so a claim's lease always outlasts a live sender."""
    return email.timeout_s * (recipients + 4)


def claim_lease(email: Email, recipients: int) -> timedelta:
    """How long a claim holds: the conversation's limit and the time to record its outcome
    (the warehouse may be locked by another step for up to a minute)."""
    return timedelta(seconds=conversation_limit(email, recipients)) + LEASE_MARGIN


def new_owner() -> str:
    """Who claims: this machine, this process and a token of this delivery."""
    return f"{socket.gethostname()}:{os.getpid()}:{token_hex(6)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the sender that holds a claim may still be running: a process of this machine
    that is gone is not; one of another machine is judged by its lease alone."""
    if owner is None:  # a claim taken before claims had owners
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _cut(smtp: smtplib.SMTP, done: threading.Event) -> None:
    """End a conversation that outlived its limit: the blocked read or write fails at once."""
    done.set()
    connection = smtp.sock
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """Leave the transaction after a refusal, as smtplib's sendmail does."""
    if code == 421:
        smtp.close()
        return
    with contextlib.suppress(*_SMTP_ERRORS):
        smtp.rset()


def transmit(
    smtp: smtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    payload: bytes,
    *,
    limit_s: float,
) -> None:
    """Hand one message to the server, as `smtplib.SMTP.sendmail` does, within `limit_s`.

    Raises:
        DeliveryUncertain: the end of the message was handed over and no answer came.
        smtplib.SMTPException, OSError: the server refused the message, or the conversation
            failed before the end of the message was handed over (it cannot have accepted it).
    """
    was_cut = threading.Event()
    cut = threading.Timer(limit_s, _cut, args=(smtp, was_cut))
    cut.daemon = True
    cut.start()
    try:
        smtp.ehlo_or_helo_if_needed()
        size = [f"size={len(payload)}"] if smtp.does_esmtp and smtp.has_extn("size") else []
        code, reply = smtp.mail(sender, size)
        if code != 250:
            _abandon(smtp, code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
            if code == 421:
                smtp.close()
                raise smtplib.SMTPRecipientsRefused(refused)
        if len(refused) == len(recipients):
            _abandon(smtp, 0)
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = smtp.docmd("data")
        if code != 354:
            _abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
        stuffed = re.sub(rb"(?m)^\.", b"..", payload)
        smtp.send(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        try:
            code, reply = smtp.getreply()
        except smtplib.SMTPServerDisconnected as err:
            if was_cut.is_set():
                raise DeliveryUncertain(f"no answer within the limit of {limit_s:g} s") from err
            raise DeliveryUncertain(_describe_smtp_error(err)) from err
        if code != 250 and was_cut.is_set():
            raise DeliveryUncertain(f"no whole answer within the limit of {limit_s:g} s")
        if code != 250 and not 400 <= code < 600:
            raise DeliveryUncertain(f"a garbled answer after the message (SMTP {code})")
        if code != 250:
            _abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
    finally:
        cut.cancel()


def _settle_dead_claims(store: Store, now: datetime) -> list[str]:
    """Claims whose sender is gone (its process ended, or its lease is over): the server may
    have the message. An alert or escalation is due again for its second sending, any other
    message is marked uncertain. A live sender's claim is left alone."""
    dead = []
    for message_id, owner, expires in store.open_claims():
        if expires is not None and expires > now and owner_alive(owner):
            continue
        store.settle_uncertain(message_id, owner, DIED_WHILE_SENDING, now, RESEND_ONCE_KINDS)
        dead.append(message_id)
    return dead


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
    """Send what may go now, hold the rest, settle claims whose sender is gone.

    The warehouse is opened briefly around each step (never while SMTP talks). Each message
    is claimed, in the name of this delivery, just before SMTP; its lease outlasts the
    conversation's limit. `on_accepted` is called after the server accepted a message and
    before it is marked sent (tests use it to kill the process exactly there).
    """
    report = DeliveryReport()
    email_settings = email
    owner = new_owner()
    started = monotonic()

    def clock() -> datetime:
        """When a claim starts: `now` moved on by the time this delivery has taken, or the
        real time when `now` lags behind it (a flow passes the time it started), so that a
        lease never starts in the past."""
        return max(now + timedelta(seconds=monotonic() - started), datetime.now(UTC))

    with open_store() as store, store.transaction():
        report.uncertain = _settle_dead_claims(store, now)
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

    def fail(message: OutboxMessage, claimed_by: str | None, reason: str) -> None:
        # Critical mail is tried again at the next delivery (every cycle and escalation
        # check); the rest backs off.
        wait = None if message.critical else backoff
        with open_store() as store:
            store.release_claim(message.message_id, claimed_by, reason, now, wait)
        report.failed[message.message_id] = reason

    client = None
    try:
        client = smtp_factory(email_settings, secrets)
        client.login()
    except _SMTP_ERRORS as err:
        reason = f"SMTP connection or login failed: {_describe_smtp_error(err)}"
        for message in to_send:
            fail(message, None, reason)
        return report
    try:
        for index, message in enumerate(to_send):
            if not message.recipients:
                fail(message, None, "no recipients (is the crisis cell configured?)")
                continue
            with open_store() as store:
                earlier = store.claim(
                    message.message_id,
                    owner,
                    clock(),
                    claim_lease(email_settings, len(message.recipients)),
                )
            if earlier is None:
                continue  # another sender took it, or it was sent meanwhile
            mime = compose_email(
                second_sending(message, language) if earlier else message,
                sender=email_settings.sender,
                sender_name=email_settings.sender_name,
                now=now,
            )
            try:
                transmit(
                    client.smtp,
                    email_settings.sender,
                    message.recipients,
                    mime.as_bytes(),
                    limit_s=conversation_limit(email_settings, len(message.recipients)),
                )
            except DeliveryUncertain as err:
                reason = f"{err}; {UNCERTAIN_REASON}"
                with open_store() as store:
                    store.settle_uncertain(
                        message.message_id, owner, reason, now, RESEND_ONCE_KINDS
                    )
                report.failed[message.message_id] = reason
                report.uncertain.append(message.message_id)
                for rest in to_send[index + 1 :]:  # the connection is gone
                    fail(rest, None, f"not tried, the connection was lost: {err}")
                break
            except _SMTP_ERRORS as err:
                reason = _describe_smtp_error(err)
                fail(message, owner, reason)
                if isinstance(err, OSError) or "disconnected" in type(err).__name__.lower():
                    # The connection is gone: the rest waits for the next delivery.
                    for rest in to_send[index + 1 :]:
                        fail(rest, None, reason)
                    break
                continue
            if on_accepted is not None:
                on_accepted(message.message_id)
            with open_store() as store:
                store.mark_sent(message.message_id, now)
            report.sent.append(message.message_id)
    finally:
        close_smtp(client)
    return report
