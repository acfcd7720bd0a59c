"""Alerts: open, update, acknowledge, page, resolve; every transition an `alert_events` row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vigie.errors import WarehouseError
from vigie.models import OutboxMessage, VolumeSignal
from warehouse.store.outbox import OutboxStore

# Who first took charge of each alert, and when (`alert_events`).
_FIRST_ACKNOWLEDGEMENT = (
    "(SELECT alert_id, arg_min(detail->>'by', occurred_at) AS by, min(occurred_at) AS at "
    "FROM alert_events WHERE kind = 'acknowledged' GROUP BY alert_id)"
)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert_id: str
    topic: str
    level: str
    status: str
    opened_at: datetime
    mentions_in_window: int
    severity: float | None = None
    last_triggered_at: datetime | None = None
    ack_url: str | None = None  # the take-charge page of its paused acknowledge run


class AlertStore(OutboxStore):
    """Alerts: open, update, acknowledge, page, resolve; every transition an `alert_events` row."""

    def period_alerts(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Alerts opened before `end` and not resolved before `start`, oldest first, with who
        acknowledged them and when (from `alert_events`)."""
        rows = self.con.execute(
            f"WITH ack AS {_FIRST_ACKNOWLEDGEMENT} "
            "SELECT a.alert_id, a.topic, a.level, a.status, a.opened_at, a.resolved_at, "
            "a.severity, a.mentions_in_window, ack.by, ack.at FROM alerts a "
            "LEFT JOIN ack ON ack.alert_id = a.alert_id "
            "WHERE a.opened_at < ? AND (a.resolved_at IS NULL OR a.resolved_at >= ?) "
            "AND NOT coalesce(a.drill, false) ORDER BY a.opened_at, a.alert_id",
            [end, start],
        ).fetchall()
        keys = (
            "alert_id",
            "topic",
            "level",
            "status",
            "opened_at",
            "resolved_at",
            "severity",
            "mentions_in_window",
            "acknowledged_by",
            "acknowledged_at",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def open_alert_for(self, topic: str) -> StoredAlert | None:
        rows = self.con.execute(
            "SELECT alert_id, topic, level, status, opened_at, mentions_in_window, severity, "
            "last_triggered_at FROM alerts WHERE topic = ? AND status IN ('open', 'acknowledged') "
            "ORDER BY opened_at DESC LIMIT 1",
            [topic],
        ).fetchall()
        return StoredAlert(*rows[0]) if rows else None

    def open_alert(
        self,
        alert_id: str,
        signal: VolumeSignal,
        *,
        level: str,
        reason: str,
        now: datetime,
        messages: Sequence[OutboxMessage],
        severity: float = 0.0,
        contributions: dict[str, Any] | None = None,
        drill: bool = False,
        story_id: str | None = None,
        ack_url: str | None = None,
    ) -> None:
        """Open an alert, log the event and queue its emails, all or nothing; `story_id`
        names the breaking story that opened it, if a story did (tasks/detect/breaking.py);
        `ack_url` the page where it is taken in charge (its email's link, kept for the
        escalation's)."""
        detail = {"level": level, "severity": severity, "contributions": contributions or {}}
        with self.transaction():
            self.con.execute(
                "INSERT INTO alerts (alert_id, topic, level, status, score, reason, opened_at, "
                "updated_at, window_start, window_end, mentions_in_window, baseline, "
                "last_triggered_at, severity, contributions, drill, story_id, ack_url) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    alert_id,
                    signal.topic,
                    level,
                    signal.score,
                    reason,
                    now,
                    now,
                    signal.window_start,
                    signal.window_end,
                    signal.current,
                    signal.baseline_median,
                    now,
                    severity,
                    json.dumps(contributions or {}),
                    drill,
                    story_id,
                    ack_url,
                ],
            )
            self.log_alert_event(alert_id, "opened", now, detail)
            for message in messages:
                self.queue(message, now)

    def update_alert(
        self,
        alert: StoredAlert,
        signal: VolumeSignal,
        now: datetime,
        *,
        level: str,
        severity: float,
        contributions: dict[str, Any],
        triggered: bool,
    ) -> str | None:
        """Keep an open alert current; return "escalated" or "updated" when that is an event.

        Escalated: the level rose. Updated: the severity rose by 5 points or more.
        """
        rank = {"veille": 0, "vigilance": 1, "alerte": 2, "crise": 3}
        kind: str | None = None
        if rank.get(level, 0) > rank.get(alert.level, 0):
            kind = "escalated"
        elif triggered and severity >= (alert.severity or 0.0) + 5.0:
            kind = "updated"
        with self.transaction():
            self.con.execute(
                "UPDATE alerts SET updated_at = ?, score = greatest(score, ?), "
                "mentions_in_window = greatest(mentions_in_window, ?), window_end = ?, "
                "last_triggered_at = CASE WHEN ? THEN ? ELSE last_triggered_at END, "
                "level = CASE WHEN ? THEN ? ELSE level END, "
                "severity = CASE WHEN ? THEN ? ELSE severity END, "
                "contributions = CASE WHEN ? THEN ? ELSE contributions END WHERE alert_id = ?",
                [
                    now,
                    signal.score,
                    signal.current,
                    signal.window_end,
                    triggered,
                    now,
                    kind == "escalated",
                    level,
                    kind is not None,
                    severity,
                    kind is not None,
                    json.dumps(contributions),
                    alert.alert_id,
                ],
            )
            if kind is not None:
                self.log_alert_event(
                    alert.alert_id,
                    kind,
                    now,
                    {"level": level, "severity": severity, "contributions": contributions},
                )
        return kind

    def acknowledge_alert(self, alert_id: str, by: str, now: datetime) -> str:
        """Record who took charge of an alert; return its status before (an alert already
        acknowledged or resolved is left as it is, and says so)."""
        rows = self.con.execute(
            "SELECT status FROM alerts WHERE alert_id = ?", [alert_id]
        ).fetchall()
        if not rows:
            raise WarehouseError(f"there is no alert {alert_id} (vigie status lists open alerts)")
        status = str(rows[0][0])
        if status == "open":
            with self.transaction():
                self.con.execute(
                    "UPDATE alerts SET status = 'acknowledged', updated_at = ? WHERE alert_id = ?",
                    [now, alert_id],
                )
                self.log_alert_event(alert_id, "acknowledged", now, {"by": by})
        return status

    def unacknowledged_alerts(self) -> list[tuple[StoredAlert, int | None, datetime]]:
        """Open alerts nobody took charge of, with the cell level last told and when."""
        rows = self.con.execute(
            "SELECT alert_id, topic, level, status, opened_at, mentions_in_window, severity, "
            "last_triggered_at, ack_url, cell_level, coalesce(paged_at, opened_at) FROM alerts "
            "WHERE status = 'open' ORDER BY opened_at"
        ).fetchall()
        return [(StoredAlert(*row[:9]), row[9], row[10]) for row in rows]

    def alert_reason(self, alert_id: str) -> str:
        rows = self.con.execute(
            "SELECT reason FROM alerts WHERE alert_id = ?", [alert_id]
        ).fetchall()
        return str(rows[0][0]) if rows else ""

    def record_paging(self, alert_id: str, cell_level: int, at: datetime) -> None:
        self.con.execute(
            "UPDATE alerts SET cell_level = ?, paged_at = ? WHERE alert_id = ?",
            [cell_level, at, alert_id],
        )

    def resolve_alert(self, alert_id: str, now: datetime, reason: str) -> None:
        with self.transaction():
            self.con.execute(
                "UPDATE alerts SET status = 'resolved', resolved_at = ?, updated_at = ? "
                "WHERE alert_id = ?",
                [now, now, alert_id],
            )
            self.log_alert_event(alert_id, "resolved", now, {"reason": reason})

    def log_alert_event(
        self, alert_id: str, kind: str, at: datetime, detail: dict[str, Any]
    ) -> None:
        self.con.execute(
            "INSERT INTO alert_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [alert_id, at, kind, json.dumps(detail, ensure_ascii=False)],
        )

    def open_alerts(self) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT alert_id, topic, level, status, opened_at, mentions_in_window, reason "
            "FROM alerts WHERE status <> 'resolved' AND NOT coalesce(drill, false) "
            "ORDER BY opened_at DESC"
        ).fetchall()

    def situation_alerts(self) -> list[dict[str, Any]]:
        """The alerts not resolved (drills left out), newest first, with who took charge of
        each and when (None: nobody yet), for the Prefect UI's `situation` artifact."""
        rows = self.con.execute(
            "SELECT a.alert_id, a.topic, a.level, a.status, a.opened_at, a.mentions_in_window, "
            f"a.cell_level, ack.by, ack.at FROM alerts a LEFT JOIN {_FIRST_ACKNOWLEDGEMENT} ack "
            "USING (alert_id) "
            "WHERE a.status <> 'resolved' AND NOT coalesce(a.drill, false) "
            "ORDER BY a.opened_at DESC"
        ).fetchall()
        keys = (
            "alert_id",
            "topic",
            "level",
            "status",
            "opened_at",
            "mentions",
            "cell_level",
            "taken_by",
            "taken_at",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def alert_stories(self, alert_ids: Sequence[str]) -> dict[str, str]:
        """The title of the breaking story that opened each of these alerts, when one did (the
        story's id when its mentions were pruned)."""
        rows = self.con.execute(
            "SELECT a.alert_id, coalesce(arg_min(m.title, m.published_at), a.story_id) "
            "FROM alerts a LEFT JOIN mentions m ON m.story_id = a.story_id "
            "WHERE a.story_id IS NOT NULL AND a.alert_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY a.alert_id, a.story_id",
            [list(alert_ids)],
        ).fetchall()
        return {str(alert_id): str(title) for alert_id, title in rows}

    def alert_details(self, alert_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What Prefect events say about each alert: topic, level, status, severity, mentions
        in its window, reason, cell level, and whether it belongs to a drill (its emails are
        drill mail)."""
        if not alert_ids:
            return {}
        rows = self.con.execute(
            "SELECT a.alert_id, a.topic, a.level, a.status, a.severity, a.mentions_in_window, "
            "a.reason, a.cell_level, bool_or(coalesce(a.drill, false) OR coalesce(o.drill, false)) "
            "FROM alerts a "
            "LEFT JOIN outbox o ON o.alert_id = a.alert_id "
            "WHERE a.alert_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY ALL",
            [list(alert_ids)],
        ).fetchall()
        keys = (
            "alert_id",
            "topic",
            "level",
            "status",
            "severity",
            "mentions",
            "reason",
            "cell_level",
            "drill",
        )
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}
