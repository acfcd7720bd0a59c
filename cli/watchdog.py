"""The dead man's switch: when no watch cycle has completed with a source answering for longer
than `health.watchdog_minutes`, the operators are told, once per stop, and again when the watch
is back.

`vigie watchdog` runs this from the system's own cron, outside Prefect, so that a dead Prefect
server or worker cannot silence it: it reads the warehouse and talks SMTP, nothing else. A cycle
where every source failed does not count as watching. Each notice has a deterministic id (the
last cycle that watched names the stop), so a watchdog run every minute queues it once; a notice
that cannot be sent stays in the outbox for the next run.

A warehouse that cannot be read (truncated, corrupt) stops the watch too, and then the outbox
cannot be used: `tell_unreadable` emails the operators straight through SMTP, and remembers it
in a small state file beside the warehouse (`<warehouse>.watchdog.json`, under a file lock, so
two watchdogs at once send one email), once per incident; the file is removed by the first run
that reads the warehouse again, which ends the incident. A process killed after the server took
the email but before the file says so sends it once more, with the same Message-ID.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Literal

from tasks.notify.emails import header_safe
from tasks.notify.rendering import LOCALES, Texts, catalogue, render
from vigie.models import OutboxMessage
from vigie.settings import Secrets, Settings
from warehouse.store import Store

STOPPED = "watchdog_stopped"
RECOVERED = "watchdog_recovered"
UNREADABLE = "watchdog_unreadable"
# Without `health.watchdog_minutes`: this many scheduled cycles missed, and at least MIN_LIMIT.
MISSED_CYCLES = 3
MIN_LIMIT = timedelta(minutes=30)

# The notices' texts, from the one catalogue of the emails (tasks/notify/catalogue).
WATCHDOG_TEXT: dict[str, dict[str, str]] = {
    language: dict(catalogue(language)["watchdog"]) for language in LOCALES
}


@dataclass(frozen=True, slots=True)
class WatchState:
    """How recently the watch watched, judged at `now` against `limit`."""

    now: datetime
    limit: timedelta
    last_cycle: str | None  # the newest completed cycle in which a source answered
    last_watched_at: datetime | None  # when it finished

    @property
    def silent_for(self) -> timedelta | None:
        return None if self.last_watched_at is None else self.now - self.last_watched_at

    @property
    def stopped(self) -> bool:
        silent = self.silent_for
        return silent is None or silent > self.limit


def watchdog_limit(settings: Settings) -> timedelta:
    """How long the watch may go without a completed cycle before the operators are told."""
    if settings.health.watchdog_minutes is not None:
        return timedelta(minutes=settings.health.watchdog_minutes)
    return max(MISSED_CYCLES * timedelta(minutes=settings.schedule.watch_every_minutes), MIN_LIMIT)


def watch_state(store: Store, *, now: datetime, limit: timedelta) -> WatchState:
    last = store.last_watching_cycle()
    if last is None:
        return WatchState(now, limit, None, None)
    return WatchState(now, limit, last[0], last[1])


def duration_text(span: timedelta, language: str = "en") -> str:
    """A span as people say it: "3 h 05", "45 min", "2 d 4 h" ("2 j 4 h" in French)."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} {WATCHDOG_TEXT[language]['days']} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d}"
    return f"{minutes} min"


def stop_notice_id(state: WatchState) -> str:
    """The id of the notice of a stop: the last cycle that watched names the stop."""
    return f"watchdog.stopped.{state.last_cycle or 'never'}"


def watchdog_notices(
    settings: Settings, state: WatchState, last_notice: tuple[str, str] | None
) -> list[OutboxMessage]:
    """What to queue now: a notice when the watch has stopped (once per stop), a recovery
    notice when it is back after a stop was told. `last_notice` is the newest watchdog notice
    queued before, as (kind, message id)."""
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    text = WATCHDOG_TEXT[language]
    recipients = tuple(m.email for m in settings.operators)
    if not recipients:
        return []
    if state.stopped:
        silent = state.silent_for
        silent_text = "∞" if silent is None else duration_text(silent, language)
        last = (
            text["last_cycle"].format(
                cycle=state.last_cycle, at=texts.when(state.last_watched_at), zone=texts.zone_name()
            )
            if state.last_watched_at is not None
            else text["never"]
        )
        intro = text["stopped_intro"].format(
            silent=silent_text, limit=duration_text(state.limit, language)
        )
        paragraphs = [intro, texts("formats.label", text=text["last"]) + " " + last, text["check"]]
        return [
            OutboxMessage(
                message_id=stop_notice_id(state),
                kind=STOPPED,
                recipients=recipients,
                subject=header_safe(text["stopped_subject"].format(silent=silent_text)),
                html=render("notice.html.j2", paragraphs=paragraphs, bold_first=True),
                text="\n\n".join(paragraphs) + "\n",
                critical=True,  # the watch being down during a crisis passes quiet hours
            )
        ]
    if last_notice is None or last_notice[0] != STOPPED or state.last_watched_at is None:
        return []
    stop = last_notice[1].removeprefix("watchdog.stopped.")
    intro = text["recovered_intro"].format(
        at=texts.when(state.last_watched_at), zone=texts.zone_name()
    )
    return [
        OutboxMessage(
            message_id=f"watchdog.recovered.{stop}",
            kind=RECOVERED,
            recipients=recipients,
            subject=header_safe(text["recovered_subject"]),
            html=render("notice.html.j2", paragraphs=[intro], bold_first=False),
            text=f"{intro}\n",
        )
    ]


def check_watch(store: Store, settings: Settings, *, now: datetime) -> tuple[WatchState, int]:
    """Judge the watch and queue what must be told; returns the state and how many notices
    were queued now (0 when they were queued by an earlier run)."""
    state = watch_state(store, now=now, limit=watchdog_limit(settings))
    queued = 0
    with store.transaction():
        for message in watchdog_notices(settings, state, store.last_notice((STOPPED, RECOVERED))):
            queued += store.queue(message, now)
    return state, queued


@dataclass(frozen=True, slots=True)
class UnreadableAlarm:
    """What the state file beside the warehouse remembers of an unreadable warehouse."""

    message_id: str  # names the incident: when it was first seen
    first_seen: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None


def alarm_file(path: Path) -> Path:
    """The state file of the unreadable-warehouse alarm of the warehouse `path`."""
    return path.with_name(path.name + ".watchdog.json")


def unreadable_notice(
    settings: Settings, alarm: UnreadableAlarm, path: Path, reason: str, hint: str
) -> OutboxMessage:
    """The email telling the operators that the warehouse cannot be read, and what to do."""
    text = WATCHDOG_TEXT[settings.organisation.language]
    intro = text["unreadable_intro"].format(path=path, reason=header_safe(reason, 300))
    todo = text["unreadable_do"].format(hint=hint)
    paragraphs = (intro, todo, text["unreadable_once"])
    return OutboxMessage(
        message_id=alarm.message_id,
        kind=UNREADABLE,
        recipients=tuple(m.email for m in settings.operators),
        subject=header_safe(text["unreadable_subject"].format(file=path.name)),
        html=render("notice.html.j2", paragraphs=paragraphs, bold_first=False),
        text="\n\n".join(paragraphs) + "\n",
        critical=True,
    )


@contextmanager
def locked_state_file(path: Path) -> Iterator[IO[str]]:
    """The state file, open for reading and writing, alone in every process until the end."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def _read_alarm(handle: IO[str]) -> UnreadableAlarm | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "null")
        if not isinstance(data, dict):
            return None
        sent = data.get("sent_at")
        return UnreadableAlarm(
            message_id=str(data["message_id"]),
            first_seen=datetime.fromisoformat(data["first_seen"]),
            sent_at=datetime.fromisoformat(sent) if sent else None,
            attempts=int(data.get("attempts", 0)),
            last_error=data.get("last_error"),
        )
    except (ValueError, KeyError, TypeError):
        return None  # a state file cut short: a new incident (one more email, none lost)


def _write_alarm(handle: IO[str], alarm: UnreadableAlarm) -> None:
    handle.seek(0)
    handle.truncate()
    json.dump(
        {
            "message_id": alarm.message_id,
            "first_seen": alarm.first_seen.isoformat(),
            "sent_at": alarm.sent_at.isoformat() if alarm.sent_at else None,
            "attempts": alarm.attempts,
            "last_error": alarm.last_error,
        },
        handle,
    )
    handle.flush()
    os.fsync(handle.fileno())


def tell_unreadable(
    settings: Settings,
    path: Path,
    reason: str,
    hint: str,
    *,
    now: datetime,
    send: Callable[[OutboxMessage], str | None],
) -> tuple[Literal["sent", "already_sent", "failed"], UnreadableAlarm]:
    """Email the operators, once per incident, that the warehouse `path` cannot be read.

    `send` hands one message to SMTP and returns None, or why it was not sent. The incident
    lasts until `clear_unreadable`; a failed send is tried again by the next run.
    """
    with locked_state_file(alarm_file(path)) as handle:
        alarm = _read_alarm(handle) or UnreadableAlarm(
            f"watchdog.unreadable.{now:%Y%m%dT%H%M%SZ}", now, None, 0, None
        )
        if alarm.sent_at is not None:
            return "already_sent", alarm
        failure = send(unreadable_notice(settings, alarm, path, reason, hint))
        alarm = replace(
            alarm,
            attempts=alarm.attempts + 1,
            sent_at=now if failure is None else None,
            last_error=failure,
        )
        _write_alarm(handle, alarm)
    return ("sent" if failure is None else "failed"), alarm


def clear_unreadable(path: Path) -> UnreadableAlarm | None:
    """End the unreadable-warehouse incident (the warehouse reads again); the alarm it had."""
    state = alarm_file(path)
    if not state.exists():
        return None
    with locked_state_file(state) as handle:
        alarm = _read_alarm(handle)
        state.unlink(missing_ok=True)
    return alarm


def send_directly(settings: Settings, secrets: Secrets) -> Callable[[OutboxMessage], str | None]:
    """A sender that talks SMTP without the outbox: None when the server took the message,
    else why not (one line, no password)."""
    from tasks.notify.delivery import compose_email
    from tasks.notify.emails import _SMTP_ERRORS, _describe_smtp_error, close_smtp, smtp_client

    def send(message: OutboxMessage) -> str | None:
        email = settings.email
        client = None
        try:
            client = smtp_client(email, secrets)
            client.login()
            mime = compose_email(message, sender=email.sender, sender_name=email.sender_name)
            client.smtp.sendmail(email.sender, list(message.recipients), mime.as_bytes())
        except _SMTP_ERRORS as err:
            return _describe_smtp_error(err)
        finally:
            close_smtp(client)
        return None

    return send
