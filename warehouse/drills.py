"""The warehouse side of drills (migration 012): the `drills` table and the drill marks.

A drill is one row keyed by its id; every write is idempotent or only fills what is still
empty, so that a rerun of the same drill finds its row and its moments as they were. What a
drill creates is marked by its sources (`sources.drill`) and alerts (`alerts.drill`); the
queries of real figures in `warehouse.store` leave those out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from vigie.settings import Source
from warehouse.store import Store

FINAL_STATUSES = ("acknowledged", "not_acknowledged", "not_detected")


@dataclass(frozen=True, slots=True)
class DrillRecord:
    drill_id: str
    name: str
    topic: str
    started_at: datetime
    injected_at: datetime | None
    detected_at: datetime | None
    alert_id: str | None
    alert_sent_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    status: str
    time_to_detect_s: float | None
    time_to_ack_s: float | None
    ack_wait_minutes: int | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where an alert stands for the drill's wait: its status, who took it and when, and when
    its email went out."""

    status: str
    opened_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    email_sent_at: datetime | None


_COLUMNS = (
    "drill_id, name, topic, started_at, injected_at, detected_at, alert_id, alert_sent_at, "
    "acknowledged_at, acknowledged_by, status, time_to_detect_s, time_to_ack_s, "
    "ack_wait_minutes, finished_at"
)


def read_drill(store: Store, drill_id: str) -> DrillRecord | None:
    rows = store.con.execute(
        f"SELECT {_COLUMNS} FROM drills WHERE drill_id = ?", [drill_id]
    ).fetchall()
    return DrillRecord(*rows[0]) if rows else None


def begin_drill(
    store: Store,
    *,
    drill_id: str,
    name: str,
    topic: str,
    now: datetime,
    ack_wait_minutes: int,
    flow_run_id: str | None,
) -> DrillRecord:
    """The drill's row, created on its first run; a rerun gets the row as it was."""
    store.con.execute(
        "INSERT INTO drills (drill_id, name, topic, started_at, status, ack_wait_minutes, "
        "flow_run_id) VALUES (?, ?, ?, ?, 'running', ?, ?) ON CONFLICT DO NOTHING",
        [drill_id, name, topic, now, ack_wait_minutes, flow_run_id],
    )
    record = read_drill(store, drill_id)
    assert record is not None  # inserted just above, or there already
    return record


def register_drill_sources(store: Store, sources: Sequence[Source]) -> None:
    """Mark the drill's sources before their first run: everything they bring is the drill's."""
    store.con.executemany(
        "INSERT INTO sources (name, kind, url, platform, tier, drill) VALUES (?, ?, ?, ?, ?, true) "
        "ON CONFLICT (name) DO UPDATE SET url = excluded.url, drill = true",
        [[s.name, s.kind, s.url, s.platform, s.tier] for s in sources],
    )


def record_injection(store: Store, drill_id: str, at: datetime) -> datetime:
    """When the crisis was first served (kept from the first run); returns it."""
    store.con.execute(
        "UPDATE drills SET injected_at = coalesce(injected_at, ?) WHERE drill_id = ?",
        [at, drill_id],
    )
    record = read_drill(store, drill_id)
    assert record is not None and record.injected_at is not None
    return record.injected_at


def drill_alert(store: Store, topic: str) -> str | None:
    """The alert a drill's topic opened (the newest), whatever its status."""
    rows = store.con.execute(
        "SELECT alert_id FROM alerts WHERE topic = ? AND drill ORDER BY opened_at DESC LIMIT 1",
        [topic],
    ).fetchall()
    return str(rows[0][0]) if rows else None


def alert_state(store: Store, alert_id: str) -> AlertState | None:
    rows = store.con.execute(
        "WITH ack AS (SELECT arg_min(detail->>'by', occurred_at) AS by, min(occurred_at) AS at "
        "FROM alert_events WHERE alert_id = ? AND kind = 'acknowledged') "
        "SELECT a.status, a.opened_at, ack.by, ack.at, "
        "(SELECT min(sent_at) FROM outbox WHERE alert_id = a.alert_id AND kind = 'alert') "
        "FROM alerts a, ack WHERE a.alert_id = ?",
        [alert_id, alert_id],
    ).fetchall()
    return AlertState(*rows[0]) if rows else None


def record_detection(store: Store, drill_id: str, alert_id: str, detected_at: datetime) -> None:
    store.con.execute(
        "UPDATE drills SET alert_id = coalesce(alert_id, ?), "
        "detected_at = coalesce(detected_at, ?), "
        "time_to_detect_s = coalesce(time_to_detect_s, epoch(? - injected_at)) "
        "WHERE drill_id = ?",
        [alert_id, detected_at, detected_at, drill_id],
    )


def finish_drill(
    store: Store,
    drill_id: str,
    *,
    status: str,
    alert_sent_at: datetime | None,
    acknowledged_at: datetime | None,
    acknowledged_by: str | None,
    time_to_ack_s: float | None,
    now: datetime,
) -> DrillRecord:
    """Record the drill's outcome once (a finished drill keeps the outcome it had)."""
    store.con.execute(
        "UPDATE drills SET status = ?, alert_sent_at = ?, acknowledged_at = ?, "
        "acknowledged_by = ?, time_to_ack_s = ?, finished_at = ? "
        "WHERE drill_id = ? AND status NOT IN (SELECT unnest(?::VARCHAR[]))",
        [
            status,
            alert_sent_at,
            acknowledged_at,
            acknowledged_by,
            time_to_ack_s,
            now,
            drill_id,
            list(FINAL_STATUSES),
        ],
    )
    record = read_drill(store, drill_id)
    assert record is not None
    return record


def drill_alert_ids(store: Store, alert_ids: Sequence[str]) -> set[str]:
    """Which of these alerts belong to a drill."""
    if not alert_ids:
        return set()
    rows = store.con.execute(
        "SELECT alert_id FROM alerts WHERE drill AND alert_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(alert_ids)],
    ).fetchall()
    return {str(row[0]) for row in rows}
