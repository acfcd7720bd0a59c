"""The dead man's switch: when no watch cycle has completed with a source answering for longer
than `health.watchdog_minutes`, the operators are told, once per stop, and again when the watch
is back.

`vigie watchdog` runs this from the system's own cron, outside Prefect, so that a dead Prefect
server or worker cannot silence it: it reads the warehouse and talks SMTP, nothing else. A cycle
where every source failed does not count as watching. Each notice has a deterministic id (the
last cycle that watched names the stop), so a watchdog run every minute queues it once; a notice
that cannot be sent stays in the outbox for the next run.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.notify import header_safe
from vigie.models import OutboxMessage
from vigie.settings import Settings
from warehouse.store import Store

STOPPED = "watchdog_stopped"
RECOVERED = "watchdog_recovered"
# Without `health.watchdog_minutes`: this many scheduled cycles missed, and at least MIN_LIMIT.
MISSED_CYCLES = 3
MIN_LIMIT = timedelta(minutes=30)

WATCHDOG_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "stopped_subject": "[Vigie][VEILLE ARRÊTÉE] Aucun cycle de veille depuis {silent}",
        "stopped_intro": (
            "La veille ne tourne plus : aucun cycle ne s’est terminé avec au moins une source "
            "collectée depuis {silent} (limite : {limit}). Une crise qui commence maintenant ne "
            "serait pas vue."
        ),
        "last": "Dernier cycle qui a veillé",
        "never": "aucun",
        "check": (
            "À vérifier : le serveur Prefect et `vigie serve` (ou le worker) tournent-ils ? "
            "`vigie status` dit si toutes les sources échouent. Vous ne recevrez pas d’autre "
            "avis avant la reprise."
        ),
        "recovered_subject": "[Vigie] La veille a repris",
        "recovered_intro": "La veille a repris : un cycle s’est terminé à {at} UTC.",
    },
    "en": {
        "stopped_subject": "[Vigie][WATCH STOPPED] No watch cycle for {silent}",
        "stopped_intro": (
            "The watch is not running: no cycle has completed with at least one source "
            "collected for {silent} (limit: {limit}). A crisis starting now would not be seen."
        ),
        "last": "Last cycle that watched",
        "never": "none",
        "check": (
            "To check: are the Prefect server and `vigie serve` (or the worker) running? "
            "`vigie status` says whether every source fails. You will not get another notice "
            "before the watch is back."
        ),
        "recovered_subject": "[Vigie] The watch is back",
        "recovered_intro": "The watch is back: a cycle completed at {at} UTC.",
    },
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


def duration_text(span: timedelta) -> str:
    """A span as people say it: "3 h 05", "45 min", "2 d 4 h"."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
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
    text = WATCHDOG_TEXT[settings.organisation.language]
    recipients = tuple(m.email for m in settings.operators)
    if not recipients:
        return []
    if state.stopped:
        silent = state.silent_for
        silent_text = "∞" if silent is None else duration_text(silent)
        last = (
            f"{state.last_cycle} ({state.last_watched_at:%Y-%m-%d %H:%M} UTC)"
            if state.last_watched_at is not None
            else text["never"]
        )
        intro = text["stopped_intro"].format(silent=silent_text, limit=duration_text(state.limit))
        return [
            OutboxMessage(
                message_id=stop_notice_id(state),
                kind=STOPPED,
                recipients=recipients,
                subject=header_safe(text["stopped_subject"].format(silent=silent_text)),
                html=(
                    '<html><body style="font-family:sans-serif">'
                    f"<p><strong>{html.escape(intro)}</strong></p>"
                    f"<p>{html.escape(text['last'])} : {html.escape(last)}</p>"
                    f"<p>{html.escape(text['check'])}</p></body></html>"
                ),
                text=f"{intro}\n\n{text['last']}: {last}\n\n{text['check']}\n",
                critical=True,  # the watch being down during a crisis passes quiet hours
            )
        ]
    if last_notice is None or last_notice[0] != STOPPED or state.last_watched_at is None:
        return []
    stop = last_notice[1].removeprefix("watchdog.stopped.")
    intro = text["recovered_intro"].format(at=f"{state.last_watched_at:%Y-%m-%d %H:%M}")
    return [
        OutboxMessage(
            message_id=f"watchdog.recovered.{stop}",
            kind=RECOVERED,
            recipients=recipients,
            subject=header_safe(text["recovered_subject"]),
            html=(
                '<html><body style="font-family:sans-serif">'
                f"<p>{html.escape(intro)}</p></body></html>"
            ),
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
