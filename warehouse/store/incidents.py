"""Incident mode (tasks/notify/incident.py, flows/incident.py): the `incidents` table and the
reads of the situation reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warehouse.store.base import DRILL_SOURCES, STORY_KEYS, _json_default
from warehouse.store.combined import Store

INCIDENT_COLUMNS = (
    "incident_id",
    "name",
    "parameters",
    "flow_run_id",
    "started_at",
    "ends_at",
    "ended_at",
    "status",
    "sitreps",
    "stop_requested_at",
    "stop_requested_by",
    "report",
)


@dataclass(frozen=True, slots=True)
class StoredIncident:
    incident_id: str
    name: str
    parameters: dict[str, Any]
    flow_run_id: str | None
    started_at: datetime
    ends_at: datetime
    ended_at: datetime | None
    status: str
    sitreps: int
    stop_requested_at: datetime | None
    stop_requested_by: str | None
    report: str | None


class IncidentStore(Store):
    """The incidents table and the reads of incident reports (additive to `Store`); what
    drills created (their sources' mentions, their alerts) is left out of the reads."""

    def _incidents(self, where: str, params: list[Any]) -> list[StoredIncident]:
        rows = self.con.execute(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents {where}", params
        ).fetchall()
        found = []
        for row in rows:
            fields = dict(zip(INCIDENT_COLUMNS, row, strict=True))
            fields["parameters"] = json.loads(fields["parameters"] or "{}")
            found.append(StoredIncident(**fields))
        return found

    def incident(self, incident_id: str) -> StoredIncident | None:
        found = self._incidents("WHERE incident_id = ?", [incident_id])
        return found[0] if found else None

    def running_incident(self, name: str) -> StoredIncident | None:
        """The incident of this name still running, if any (the latest)."""
        found = self._incidents(
            "WHERE name = ? AND status = 'running' ORDER BY started_at DESC LIMIT 1", [name]
        )
        return found[0] if found else None

    def incident_of_run(self, flow_run_id: str) -> StoredIncident | None:
        found = self._incidents(
            "WHERE flow_run_id = ? ORDER BY started_at DESC LIMIT 1", [flow_run_id]
        )
        return found[0] if found else None

    def incidents(self, limit: int = 50) -> list[StoredIncident]:
        return self._incidents("ORDER BY started_at DESC LIMIT ?", [limit])

    def begin_incident(
        self,
        incident_id: str,
        name: str,
        parameters: dict[str, Any],
        *,
        started_at: datetime,
        ends_at: datetime,
        flow_run_id: str | None,
    ) -> StoredIncident:
        """Record a running incident once; a second call with the same id returns the first."""
        self.con.execute(
            "INSERT INTO incidents (incident_id, name, parameters, flow_run_id, started_at, "
            "ends_at, status) VALUES (?, ?, ?, ?, ?, ?, 'running') ON CONFLICT DO NOTHING",
            [
                incident_id,
                name,
                json.dumps(parameters, ensure_ascii=False, default=_json_default),
                flow_run_id,
                started_at,
                ends_at,
            ],
        )
        stored = self.incident(incident_id)
        assert stored is not None
        return stored

    def record_sitrep(self, incident_id: str, number: int) -> None:
        self.con.execute(
            "UPDATE incidents SET sitreps = greatest(sitreps, ?) WHERE incident_id = ?",
            [number, incident_id],
        )

    def request_incident_stop(self, name: str, by: str, now: datetime) -> StoredIncident | None:
        """Ask the running incident of this name to stop; None when none is running."""
        running = self.running_incident(name)
        if running is None:
            return None
        self.con.execute(
            "UPDATE incidents SET stop_requested_at = coalesce(stop_requested_at, ?), "
            "stop_requested_by = coalesce(stop_requested_by, ?) WHERE incident_id = ?",
            [now, by, running.incident_id],
        )
        return self.incident(running.incident_id)

    def end_incident(
        self, incident_id: str, *, status: str, ended_at: datetime, report: str
    ) -> bool:
        """Close a running incident with its report; False when it was already closed."""
        changed = self.con.execute(
            "UPDATE incidents SET status = ?, ended_at = ?, report = ? "
            "WHERE incident_id = ? AND status = 'running'",
            [status, ended_at, report, incident_id],
        ).fetchall()[0][0]
        return bool(changed)

    def collected_topic_counts(
        self, topics: Sequence[str], *, start: datetime, end: datetime
    ) -> dict[str, int]:
        """Per topic: mentions collected in [start, end) (0 for a topic without any)."""
        rows = self.con.execute(
            "SELECT t.topic, count(*) FROM (SELECT unnest(topics) AS topic FROM mentions "
            f"WHERE collected_at >= ? AND collected_at < ? AND source NOT IN {DRILL_SOURCES}) t "
            "WHERE t.topic IN (SELECT unnest(?::VARCHAR[])) GROUP BY t.topic",
            [start, end, list(topics)],
        ).fetchall()
        found = {str(topic): int(count) for topic, count in rows}
        return {topic: found.get(topic, 0) for topic in topics}

    def collected_stories(
        self, *, start: datetime, end: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Stories with mentions collected in [start, end), major outlets and wider stories
        first, each with the title and link of its best-tier (then earliest) mention."""
        rows = self.con.execute(
            "SELECT story_id, arg_min(title, (tier, published_at, mention_id)), "
            "arg_min(url, (tier, published_at, mention_id)), "
            "arg_min(source, (tier, published_at, mention_id)), min(tier), count(*), "
            "count(DISTINCT source), min(published_at), "
            "list_sort(list_distinct(flatten(list(topics)))) FROM mentions "
            "WHERE collected_at >= ? AND collected_at < ? AND title <> '' "
            f"AND source NOT IN {DRILL_SOURCES} GROUP BY story_id "
            "ORDER BY min(tier), count(DISTINCT source) DESC, count(*) DESC, "
            "min(published_at), story_id LIMIT ?",
            [start, end, limit],
        ).fetchall()
        return [dict(zip(STORY_KEYS, row, strict=True)) for row in rows]

    def alert_timeline(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every alert event in [start, end), oldest first, with its alert's topic and level."""
        rows = self.con.execute(
            "SELECT e.occurred_at, e.alert_id, e.kind, a.topic, "
            "coalesce(e.detail->>'level', a.level), e.detail->>'by' FROM alert_events e "
            "JOIN alerts a ON a.alert_id = e.alert_id "
            "WHERE e.occurred_at >= ? AND e.occurred_at < ? AND NOT coalesce(a.drill, false) "
            "ORDER BY e.occurred_at, e.alert_id, e.kind",
            [start, end],
        ).fetchall()
        keys = ("at", "alert_id", "kind", "topic", "level", "by")
        return [dict(zip(keys, row, strict=True)) for row in rows]
