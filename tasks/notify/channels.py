"""Chat, push and SMS channels (Apprise): alerts, escalations, incident reports and the
watchdog's notices told where the crisis cell lives, besides the email.

A member's or a team's `channels` are Apprise URLs (Mattermost, Slack, Teams, Matrix, a plain
JSON webhook, SMS...). Each outbox message of a kind channels carry gets, once, one row per
channel of the people it goes to (`warehouse/channel_outbox.py`): its members' channels, and the
channels of the teams among its recipients (a watch's `notify_teams` adds the team to its
alerts). Each row is then sent with the outbox's guarantees: claimed with an owner and a lease
before Apprise hands it to the service, marked sent as soon as the service accepts it, released
and due again when the service refuses it or cannot be reached (critical rows at the next
delivery, others after a back-off), and uncertain when the request went out and no answer came:
an uncertain alert or escalation goes once more with a line saying so, any other kind is left
for a person. The URL is a secret: rows name a channel by a hash and a label, and what is
recorded of a failure is built from Apprise's outcome, never from its log lines.

The text is short and plain, French or English, and holds only what Vigie wrote itself (levels,
topics, counts, times): a title from a feed could carry markup, links or mentions a chat would
act on. An incident report's subject (the title the cell gave it) is stripped of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tasks.notify.delivery import (
    LEASE_MARGIN,
    MAX_ATTEMPTS,
    RESEND_ONCE_KINDS,
    SECOND_SENDING,
    backoff,
    new_owner,
    owner_alive,
)
from tasks.notify.rendering import LOCALES, Texts, catalogue
from vigie.models import OutboxMessage
from vigie.settings import Settings
from warehouse.channel_outbox import ChannelMessage, ChannelOutbox, UnplannedMessage

# The outbox kinds told on channels: what the cell must act on, and the watch being down.
CHANNEL_KINDS = frozenset(
    {"alert", "escalation", "incident", "watchdog_stopped", "watchdog_recovered"}
)
# How long one channel's sending may take (Apprise stops waiting then: the outcome is unknown).
SEND_TIMEOUT_S = 20.0
MAX_BODY_CHARS = 700
DIED_WHILE_SENDING = (
    "delivery uncertain: the process sending it stopped before the service answered"
)

Outcome = Literal["sent", "refused", "uncertain"]


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    outcome: Outcome
    reason: str = ""


# Sends (url, title, body, urgent) and says how it went.
Notifier = Callable[[str, str, str, bool], ChannelOutcome]


@dataclass
class ChannelReport:
    planned: int = 0
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChannelTarget:
    channel_id: str
    label: str
    url: str


def channel_id(url: str) -> str:
    """How the warehouse names a channel: a hash of its URL (the URL itself is a secret)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def channel_label(owner: str, url: str) -> str:
    """A channel for people: whose it is, its scheme and the start of its hash, never the URL."""
    scheme = url.partition("://")[0].lower()
    return f"{owner} · {scheme} #{channel_id(url)[:8]}"


def topic_team_addresses(settings: Settings, topic: str) -> tuple[str, ...]:
    """The addresses of the teams the watch `topic` names in `notify_teams`."""
    watch = next((w for w in settings.watch if w.name == topic), None)
    if watch is None:
        return ()
    teams = [t for t in settings.teams if t.name in watch.notify_teams]
    return tuple(address for team in teams for address in team.emails)


def with_topic_teams(settings: Settings, topic: str, message: OutboxMessage) -> OutboxMessage:
    """The alert `message` also addressed to the teams its topic names (once each)."""
    extra = [a for a in topic_team_addresses(settings, topic) if a not in message.recipients]
    if not extra:
        return message
    return replace(message, recipients=(*message.recipients, *dict.fromkeys(extra)))


def channel_targets(settings: Settings, recipients: Sequence[str]) -> list[ChannelTarget]:
    """The channels of the members and teams a message is addressed to, each once."""
    wanted = {address.lower() for address in recipients}
    found: dict[str, ChannelTarget] = {}
    owners: list[tuple[str, Sequence[str], Sequence[str]]] = [
        (m.name, (m.email,), [c.get_secret_value() for c in m.channels])
        for m in settings.cell.members
    ]
    owners += [
        (t.name, t.emails, [c.get_secret_value() for c in t.channels]) for t in settings.teams
    ]
    for name, addresses, urls in owners:
        if not any(a.lower() in wanted for a in addresses):
            continue
        for url in urls:
            target = ChannelTarget(channel_id(url), channel_label(name, url), url)
            found.setdefault(target.channel_id, target)
    return list(found.values())


# The channels' texts, from the one catalogue (tasks/notify/catalogue, `[channel]`).
_TEXT: dict[str, dict[str, Any]] = {
    language: dict(catalogue(language)["channel"]) for language in LOCALES
}
# What may pass from a text Vigie did not write (a subject holding a story's title, a reason):
# letters, digits, spaces and plain punctuation. Markup, links, mentions and emphasis a chat
# would act on (<>[]()*_`~#@|!/) become spaces; so do control and invisible characters.
_INERT = re.compile(r"[^\w \-.,;:'’«»“”?%+=&€$°]")


def inert(value: str, limit: int = 200) -> str:
    """`value` on one line, with nothing a chat service would read as markup, bounded."""
    kept = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in value
    )
    kept = " ".join(_INERT.sub(" ", kept).split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class AlertFacts:
    topic: str
    level: str
    opened_at: datetime
    mentions_in_window: int


def chat_text(
    message: UnplannedMessage,
    alert: AlertFacts | None,
    *,
    language: str,
    timezone: str,
) -> tuple[str, str]:
    """The title and body a channel gets for the outbox `message` (short, plain text)."""
    text = _TEXT[language if language in _TEXT else "en"]
    levels: dict[str, str] = text["levels"]
    subject = inert(message.subject)
    prefix = str(text["drill"]) if message.drill else ""
    if message.kind in ("alert", "escalation"):
        facts = {
            "level": levels.get(alert.level, alert.level.upper()) if alert else "?",
            "topic": alert.topic if alert else str(text["unknown_alert"]),
            "at": f"{alert.opened_at.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"
            if alert
            else "?",
            "count": Texts(language if language in _TEXT else "en").plural(
                "counts.mentions", alert.mentions_in_window
            )
            if alert
            else "?",
            "alert_id": inert(message.alert_id or "", 80),
        }
        title = str(text[f"{message.kind}_title"]).format(**facts)
        body = str(text[f"{message.kind}_body"]).format(**facts)
    elif message.kind == "incident":
        title = str(text["incident_title"])
        body = str(text["incident_body"]).format(subject=subject)
    elif message.kind in ("watchdog_stopped", "watchdog_recovered"):
        title = str(text[f"{message.kind}_title"])
        body = inert(message.text, MAX_BODY_CHARS) or subject
    else:
        title, body = str(text["other_title"]), subject
    return prefix + title, body[:MAX_BODY_CHARS]


def plan_channels(outbox: ChannelOutbox, settings: Settings, now: datetime) -> int:
    """Choose, once, the channels of every outbox message not looked at yet; returns the rows
    added. A message of a kind channels do not carry, or addressed to nobody with a channel, is
    marked looked at with no row."""
    added = 0
    with _transaction(outbox):
        for message in outbox.unplanned():
            rows: list[ChannelMessage] = []
            if message.kind in CHANNEL_KINDS:
                targets = channel_targets(settings, message.recipients)
                if targets:
                    alert = _alert_facts(outbox, message.alert_id)
                    title, body = chat_text(
                        message,
                        alert,
                        language=settings.organisation.language,
                        timezone=settings.organisation.timezone,
                    )
                    rows = [
                        ChannelMessage(
                            message.message_id,
                            target.channel_id,
                            target.label,
                            message.kind,
                            title,
                            body,
                            message.critical,
                            message.drill,
                        )
                        for target in targets
                    ]
            added += outbox.plan(message.message_id, rows, now)
    return added


@contextlib.contextmanager
def _transaction(outbox: ChannelOutbox) -> Iterator[None]:
    outbox.con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        outbox.con.execute("ROLLBACK")
        raise
    outbox.con.execute("COMMIT")


def _alert_facts(outbox: ChannelOutbox, alert_id: str | None) -> AlertFacts | None:
    if alert_id is None:
        return None
    rows = outbox.con.execute(
        "SELECT topic, level, opened_at, mentions_in_window FROM alerts WHERE alert_id = ?",
        [alert_id],
    ).fetchall()
    if not rows:
        return None
    topic, level, opened_at, count = rows[0]
    return AlertFacts(str(topic), str(level), opened_at, int(count or 0))


def _classify(status_ok: bool, timed_out: bool, logs: Sequence[str]) -> ChannelOutcome:
    """Apprise's outcome as ours, with a reason built from it (its log lines may hold the URL
    or a token, and are never recorded)."""
    if status_ok:
        return ChannelOutcome("sent")
    joined = "\n".join(logs)
    if timed_out or re.search(
        r"Read timed out|RemoteDisconnected|Connection aborted|IncompleteRead|"
        r"ChunkedEncodingError|ConnectionResetError",
        joined,
    ):
        return ChannelOutcome(
            "uncertain", "the request went out and no answer came (the service may have it)"
        )
    code = re.search(r"error=(\d{3})", joined)
    if code:
        return ChannelOutcome("refused", f"the service answered HTTP {code.group(1)}")
    if re.search(r"Connection refused|NewConnectionError|ConnectTimeout|Max retries", joined):
        return ChannelOutcome("refused", "the service could not be reached")
    if re.search(r"Name or service not known|getaddrinfo|NameResolution", joined):
        return ChannelOutcome("refused", "the service's name could not be resolved")
    return ChannelOutcome("refused", "the service did not accept the message")


def apprise_notify(url: str, title: str, body: str, urgent: bool) -> ChannelOutcome:
    """Send one message to one channel with Apprise: no custom plugins, nothing stored on disk,
    nothing logged outside the call (Apprise's own lines may name the service)."""
    import apprise

    asset = apprise.AppriseAsset(plugin_paths=[], storage_mode="memory")
    sender = apprise.Apprise(asset=asset)
    with _apprise_lines_kept_in_the_result():
        if not sender.add(url):
            return ChannelOutcome(
                "refused", "Apprise cannot read this channel's URL: check it in the configuration"
            )
        result = sender.notify(
            body=body,
            title=title,
            notify_type=apprise.NotifyType.FAILURE if urgent else apprise.NotifyType.INFO,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=SEND_TIMEOUT_S,
            log_level=logging.DEBUG,
        )
    with result:
        logs = [entry.message for entry in result.logs()]
        return _classify(bool(result), result.timeout_count > 0, logs)


@contextlib.contextmanager
def _apprise_lines_kept_in_the_result() -> Iterator[None]:
    """Apprise's debug lines (which say why a request failed) reach the call's result, and
    none reaches our logs or stderr: they print the channel's URL. Senders in several threads
    share the setting; the last one out restores the logger."""
    logger = logging.getLogger("apprise")
    with _QUIET_LOCK:
        if not _QUIET_USERS:
            if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
                logger.addHandler(logging.NullHandler())  # else logging's last resort prints
            _QUIET_SAVED[:] = [logger.level, logger.propagate]
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
        _QUIET_USERS.append(threading.get_ident())
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_USERS.pop()
            if not _QUIET_USERS:
                logger.setLevel(int(_QUIET_SAVED[0]))
                logger.propagate = bool(_QUIET_SAVED[1])


_QUIET_LOCK = threading.Lock()
_QUIET_USERS: list[int] = []
_QUIET_SAVED: list[int | bool] = []


def _urgent(message: ChannelMessage) -> bool:
    return message.critical and message.kind != "watchdog_recovered"


def deliver_channels(
    *,
    settings: Settings,
    now: datetime,
    open_outbox: Callable[[], contextlib.AbstractContextManager[ChannelOutbox]],
    notify: Notifier = apprise_notify,
    on_accepted: Callable[[str], None] | None = None,
) -> ChannelReport:
    """Choose the channels of new outbox messages, settle claims whose sender is gone, then send
    every due row once. The warehouse is opened briefly around each step, never while a
    service is talking. `on_accepted` is called once a service accepted a row, before it is
    marked sent (tests kill the process there)."""
    report = ChannelReport()
    language = settings.organisation.language
    urls = {
        channel_id(c.get_secret_value()): c.get_secret_value()
        for channels in [m.channels for m in settings.cell.members]
        + [t.channels for t in settings.teams]
        for c in channels
    }
    owner = new_owner()
    lease = timedelta(seconds=SEND_TIMEOUT_S) + LEASE_MARGIN
    with open_outbox() as outbox:
        report.planned = plan_channels(outbox, settings, now)
        for message_id, channel, holder, expires in outbox.open_claims():
            if expires is not None and expires > now and owner_alive(holder):
                continue
            outbox.settle_uncertain(
                message_id, channel, holder, DIED_WHILE_SENDING, now, RESEND_ONCE_KINDS
            )
            report.uncertain.append(f"{message_id}@{channel}")
        due = outbox.due(MAX_ATTEMPTS, now)
    for message, _attempts in due:
        key = f"{message.message_id}@{message.label}"
        wait = None if message.critical else backoff
        url = urls.get(message.channel_id)
        if url is None:
            reason = "this channel is no longer in the configuration"
            with open_outbox() as outbox:
                outbox.release(message.message_id, message.channel_id, None, reason, now, backoff)
            report.failed[key] = reason
            continue
        with open_outbox() as outbox:
            earlier = outbox.claim(
                message.message_id, message.channel_id, owner, max(now, datetime.now(UTC)), lease
            )
        if earlier is None:
            continue  # another sender took it, or it was sent meanwhile
        body = message.body
        if earlier:
            line = SECOND_SENDING[language if language in SECOND_SENDING else "en"]
            body = f"{line}\n\n{body}"
        try:
            outcome = notify(url, message.title, body, _urgent(message))
        except Exception as err:  # a plugin's bug must not stop the other channels
            outcome = ChannelOutcome("refused", f"Apprise failed: {type(err).__name__}")
        if outcome.outcome == "sent":
            if on_accepted is not None:
                on_accepted(key)
            with open_outbox() as outbox:
                outbox.mark_sent(message.message_id, message.channel_id, now)
            report.sent.append(key)
        elif outcome.outcome == "uncertain":
            with open_outbox() as outbox:
                outbox.settle_uncertain(
                    message.message_id,
                    message.channel_id,
                    owner,
                    f"delivery uncertain: {outcome.reason}",
                    now,
                    RESEND_ONCE_KINDS,
                )
            report.failed[key] = outcome.reason
            report.uncertain.append(key)
        else:
            with open_outbox() as outbox:
                outbox.release(
                    message.message_id, message.channel_id, owner, outcome.reason, now, wait
                )
            report.failed[key] = outcome.reason
    return report
