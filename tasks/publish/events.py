"""Prefect events: what Vigie tells Prefect's event stream, so users can build automations on
alerts and on the health of sources (the contract of notes/contracts.md).

Events: `vigie.alert.opened`, `vigie.alert.escalated` (the level rose, or nobody acknowledged
and the next level of the cell was paged), `vigie.alert.acknowledged`, `vigie.source.down`,
`vigie.source.recovered`, and `vigie.watch.watched` at the end of every cycle in which a source
answered (what the dead man's switch automation expects: cli/watch_automation.py). The
resource of an alert event is `vigie.alert.<alert_id>` with its topic, level and drill mark as
labels; of a source event, `vigie.source.<slug of its name>`; of a watch event,
`vigie.watch.<key of the warehouse>` (one watch per warehouse file).

Plain functions build the events from what the warehouse recorded; `emit_vigie_events` hands
them to `prefect.events.emit_event`. Requires `PREFECT_API_URL` outside a flow run: without it
Prefect would start a temporary server of its own to receive them (STACK.md gotcha 2), so
nothing is emitted. Events never make a cycle or a command fail: a failure to emit is logged
once per process, and the alert itself (its emails, its rows) does not depend on them.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.notify.alerts import AlertChanges
from tasks.notify.emails import header_safe
from vigie.query import fold
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

ALERT_OPENED = "vigie.alert.opened"
ALERT_ESCALATED = "vigie.alert.escalated"
ALERT_ACKNOWLEDGED = "vigie.alert.acknowledged"
SOURCE_DOWN = "vigie.source.down"
SOURCE_RECOVERED = "vigie.source.recovered"
WATCH_WATCHED = "vigie.watch.watched"

# Label values and payload texts come from the configuration and the network: one line,
# bounded, so an event stays far below Prefect's size limit.
MAX_LABEL_CHARS = 200
MAX_REASON_CHARS = 500

# The lines tasks.collect.health and tasks.notify.escalation return: "<source>: ok -> failing",
# "<alert id>: level 1 -> 2". A source name may itself contain ": ".
_HEALTH_CHANGE = re.compile(r"^(?P<source>.+): (?P<previous>[a-z_]+) -> (?P<state>[a-z_]+)$")
_PAGING = re.compile(r"^(?P<alert_id>\S+): level (?P<from_level>\d+) -> (?P<to_level>\d+)$")

_log = logging.getLogger(__name__)
_failure_logged = False


@dataclass(frozen=True, slots=True)
class VigieEvent:
    """One Prefect event: its name, the resource it is about, what happened."""

    name: str
    resource: dict[str, str]
    payload: dict[str, Any]


def _one_line(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    return header_safe(str(value), limit)


def source_slug(name: str) -> str:
    """A stable id part for a source name: "Blogue du terroir" -> "blogue-du-terroir"."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")[:80].rstrip("-")
    return slug or "source"


def alert_resource(alert_id: str, topic: str, level: str, *, drill: bool) -> dict[str, str]:
    return {
        "prefect.resource.id": f"vigie.alert.{alert_id}",
        "prefect.resource.name": _one_line(topic),
        "vigie.alert.level": _one_line(level),
        "vigie.alert.topic": _one_line(topic),
        "vigie.drill": "true" if drill else "false",
    }


def source_resource(name: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"vigie.source.{source_slug(name)}",
        "prefect.resource.name": _one_line(name),
    }


def watch_key(settings: Settings) -> str:
    """What tells one watch from another on a shared Prefect server: its warehouse file."""
    path = str(settings.warehouse_path.resolve())
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:12]


def watch_resource(settings: Settings) -> dict[str, str]:
    return {
        "prefect.resource.id": f"vigie.watch.{watch_key(settings)}",
        "prefect.resource.name": _one_line(settings.organisation.name),
        "vigie.warehouse": _one_line(settings.warehouse_path.resolve()),
    }


def watched_event(settings: Settings, cycle_id: str, finished_at: datetime) -> VigieEvent:
    """`vigie.watch.watched`: the cycle completed with at least one source answering."""
    payload = {"cycle_id": cycle_id, "finished_at": f"{finished_at:%Y-%m-%d %H:%M} UTC"}
    return VigieEvent(WATCH_WATCHED, watch_resource(settings), payload)


def alert_event(
    name: str, alert: Mapping[str, Any], *, ui_url: str | None = None, **extra: Any
) -> VigieEvent:
    """An alert event from `Store.alert_details` of the alert, with `extra` in the payload."""
    payload: dict[str, Any] = {
        "alert_id": alert["alert_id"],
        "topic": _one_line(alert["topic"]),
        "level": alert["level"],
        "status": alert["status"],
        "severity": None if alert["severity"] is None else round(float(alert["severity"]), 1),
        "mentions": int(alert["mentions"] or 0),
        "reason": _one_line(alert["reason"] or "", MAX_REASON_CHARS),
        "drill": bool(alert["drill"]),
        **extra,
    }
    if ui_url:
        payload["ui_url"] = ui_url
    resource = alert_resource(
        alert["alert_id"], alert["topic"], alert["level"], drill=bool(alert["drill"])
    )
    return VigieEvent(name, resource, payload)


def source_event(
    source: str, previous: str, state: str, reason: str, *, ui_url: str | None = None
) -> VigieEvent:
    """`vigie.source.recovered` when a source is back to ok, else `vigie.source.down`."""
    payload: dict[str, Any] = {
        "source": _one_line(source),
        "state": state,
        "previous": previous,
        "reason": _one_line(reason, MAX_REASON_CHARS),
    }
    if ui_url:
        payload["ui_url"] = ui_url
    name = SOURCE_RECOVERED if state == "ok" else SOURCE_DOWN
    return VigieEvent(name, source_resource(source), payload)


def parse_health_change(line: str) -> tuple[str, str, str] | None:
    """(source, previous state, new state) of a line of `check_source_health`."""
    match = _HEALTH_CHANGE.match(line)
    return (match["source"], match["previous"], match["state"]) if match else None


def parse_paging(line: str) -> tuple[str, int, int] | None:
    """(alert id, from level, to level) of a line of `escalate_unacknowledged`."""
    match = _PAGING.match(line)
    return (match["alert_id"], int(match["from_level"]), int(match["to_level"])) if match else None


def cycle_events(
    store: Store,
    changes: AlertChanges,
    pagings: Sequence[str],
    health_changes: Sequence[str],
    *,
    ui_url: str | None = None,
) -> list[VigieEvent]:
    """The events of one watch cycle: alerts opened, escalated (level or cell), sources down
    or recovered; details read from the warehouse as the cycle left it."""
    paged = [p for p in map(parse_paging, pagings) if p is not None]
    ids = [*changes.opened, *changes.escalated, *(alert_id for alert_id, _, _ in paged)]
    alerts = store.alert_details(ids)
    events = [
        alert_event(ALERT_OPENED, alerts[alert_id], ui_url=ui_url)
        for alert_id in changes.opened
        if alert_id in alerts
    ]
    events += [
        alert_event(ALERT_ESCALATED, alerts[alert_id], ui_url=ui_url, escalation="level")
        for alert_id in changes.escalated
        if alert_id in alerts
    ]
    events += [
        alert_event(
            ALERT_ESCALATED,
            alerts[alert_id],
            ui_url=ui_url,
            escalation="cell",
            from_level=from_level,
            to_level=to_level,
        )
        for alert_id, from_level, to_level in paged
        if alert_id in alerts
    ]
    reasons = {row[0]: row[9] for row in store.source_health()}
    for line in health_changes:
        parsed = parse_health_change(line)
        if parsed is not None:
            source, previous, state = parsed
            events.append(
                source_event(source, previous, state, reasons.get(source) or "", ui_url=ui_url)
            )
    return events


def acknowledged_event(
    store: Store, alert_id: str, by: str, *, ui_url: str | None = None
) -> VigieEvent | None:
    """The `vigie.alert.acknowledged` event of an alert just taken in charge by `by`."""
    alert = store.alert_details([alert_id]).get(alert_id)
    if alert is None:
        return None
    return alert_event(ALERT_ACKNOWLEDGED, alert, ui_url=ui_url, by=_one_line(by, 120))


def _report_failure(
    err: BaseException, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    global _failure_logged
    if _failure_logged:
        _log.debug("Prefect events not emitted: %s", err)
        return
    _failure_logged = True
    logger.warning(
        "Prefect events not emitted (the alerts and emails are not affected): %s: %s",
        type(err).__name__,
        err,
    )


def prefect_api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def emit_vigie_events(
    events: Sequence[VigieEvent],
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> int:
    """Hand the events to Prefect's event stream; return how many it took. Never raises.

    Outside a flow run and without `PREFECT_API_URL`, nothing is emitted (0).
    """
    if not events or not (prefect_api_url() or _in_prefect_run()):
        return 0
    try:
        from prefect.events import Event, emit_event

        # Validated here first: emit_event logs a traceback for an invalid event.
        for item in events:
            Event.model_validate(
                {"event": item.name, "resource": item.resource, "payload": item.payload}
            )
        return sum(
            emit_event(event=item.name, resource=dict(item.resource), payload=dict(item.payload))
            is not None
            for item in events
        )
    except Exception as err:  # an event is never worth a failed cycle
        _report_failure(err, logger or _log)
        return 0


def prefect_server_answers(api_url: str, timeout_s: float = 2.0) -> bool:
    """Whether the Prefect API at `api_url` answers its health check within `timeout_s` (an
    HTTP error is an answer: a server behind authentication is there)."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def emit_from_command(events: Sequence[VigieEvent], *, wait_s: float = 5.0) -> str | None:
    """Emit from a short command (`vigie ack`), which may run without any Prefect server.

    Without `PREFECT_API_URL`, nothing is tried. With it, the server must answer its health
    check first (else the events client would retry for seconds at exit), and the events are
    flushed before returning, for at most `wait_s`. Returns a one-line note when events could
    not go, else None.
    """
    api_url = prefect_api_url()
    if not events or api_url is None:
        return None
    if not prefect_server_answers(api_url):
        return f"Prefect server at {api_url} did not answer: no Prefect event emitted"
    if emit_vigie_events(events) == 0:
        return "Prefect events not emitted"
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=wait_s)
    return None


@task(name="emit-events", cache_policy=NO_CACHE)
def emit_cycle_events_task(
    path: Path,
    changes: AlertChanges,
    pagings: Sequence[str],
    health_changes: Sequence[str],
    ui_url: str | None = None,
) -> int:
    """Tell Prefect's event stream about the cycle's alerts and source health (never fails)."""
    from prefect import get_run_logger

    logger = get_run_logger()
    try:
        with open_warehouse(path) as con:
            events = cycle_events(Store(con), changes, pagings, health_changes, ui_url=ui_url)
    except Exception as err:  # an event is never worth a failed cycle
        _report_failure(err, logger)
        return 0
    return emit_vigie_events(events, logger)


@task(name="emit-watch-event", cache_policy=NO_CACHE)
def emit_watch_event_task(path: Path, settings: Settings, cycle_id: str) -> int:
    """Tell Prefect that this cycle watched (a source answered), as `vigie watchdog` counts
    it; nothing for a cycle where every source failed. Never fails."""
    from prefect import get_run_logger

    logger = get_run_logger()
    try:
        with open_warehouse(path) as con:
            last = Store(con).last_watching_cycle()
    except Exception as err:  # an event is never worth a failed cycle
        _report_failure(err, logger)
        return 0
    if last is None or last[0] != cycle_id:
        return 0
    return emit_vigie_events([watched_event(settings, cycle_id, last[1])], logger)
