"""Watch cycles: begun, finished, runs Prefect knows that no cycle recorded; counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from warehouse.store.base import DRILL_ALERTS, DRILL_SOURCES, StoreBase, _json_default


class CycleStore(StoreBase):
    """Watch cycles: begun, finished, runs Prefect knows that no cycle recorded; counts."""

    def begin_cycle(self, cycle_id: str, started_at: datetime, flow_run_id: str | None) -> None:
        self.con.execute(
            "INSERT INTO cycles (cycle_id, started_at, flow_run_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [cycle_id, started_at, flow_run_id],
        )

    def finish_cycle(
        self, cycle_id: str, finished_at: datetime, summary: Mapping[str, Any]
    ) -> None:
        self.con.execute(
            "UPDATE cycles SET finished_at = ?, summary = ? WHERE cycle_id = ?",
            [finished_at, json.dumps(summary, default=_json_default), cycle_id],
        )

    def note_unrecorded_run(self, flow_run_id: str, at: datetime) -> str | None:
        """Mark the cycle of `flow_run_id` as not recorded in Prefect; its cycle id, or None
        when that run never began a cycle."""
        rows = self.con.execute(
            "UPDATE cycles SET unrecorded_at = ? WHERE flow_run_id = ? RETURNING cycle_id",
            [at, flow_run_id],
        ).fetchall()
        return str(rows[0][0]) if rows else None

    def unrecorded_runs(self) -> list[tuple[str, str, datetime | None]]:
        """(cycle id, flow run id, finished at) of each cycle whose run is not recorded."""
        rows = self.con.execute(
            "SELECT cycle_id, flow_run_id, finished_at FROM cycles "
            "WHERE unrecorded_at IS NOT NULL ORDER BY started_at"
        ).fetchall()
        return [(str(c), str(r), f) for c, r, f in rows]

    def forget_unrecorded_run(self, cycle_id: str) -> None:
        self.con.execute("UPDATE cycles SET unrecorded_at = NULL WHERE cycle_id = ?", [cycle_id])

    def counts(self, *, drills: bool = True) -> dict[str, int]:
        """Rows per table of the contract; with `drills=False`, what drills created is left out."""
        if not drills:
            return self._counts_without_drills()
        tables = (
            "mentions",
            "sources",
            "source_runs",
            "quarantine",
            "stories",
            "alerts",
            "alert_events",
            "outbox",
        )
        return {
            t: int(self.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in tables
        }

    def _counts_without_drills(self) -> dict[str, int]:
        from_source = f"source NOT IN {DRILL_SOURCES}"
        where = {
            "mentions": from_source,
            "sources": "NOT coalesce(drill, false)",
            "source_runs": from_source,
            "quarantine": from_source,
            "stories": f"story_id NOT IN (SELECT story_id FROM mentions WHERE source IN "
            f"{DRILL_SOURCES})",
            "alerts": "NOT coalesce(drill, false)",
            "alert_events": f"alert_id NOT IN {DRILL_ALERTS}",
            "outbox": "NOT coalesce(drill, false)",
        }
        return {
            t: int(self.con.execute(f"SELECT count(*) FROM {t} WHERE {w}").fetchall()[0][0])
            for t, w in where.items()
        }

    def last_cycle(self) -> tuple[str, datetime, datetime | None, str | None] | None:
        rows = self.con.execute(
            "SELECT cycle_id, started_at, finished_at, summary FROM cycles "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchall()
        return rows[0] if rows else None

    def last_watching_cycle(self) -> tuple[str, datetime] | None:
        """The newest completed cycle in which a source (not a drill's) answered, and its end."""
        rows = self.con.execute(
            "SELECT c.cycle_id, c.finished_at FROM cycles c "
            "WHERE c.finished_at IS NOT NULL AND EXISTS (SELECT 1 FROM source_runs r "
            "WHERE r.cycle_id = c.cycle_id AND r.status IN ('ok', 'not_modified') "
            f"AND r.source NOT IN {DRILL_SOURCES}) "
            "ORDER BY c.finished_at DESC LIMIT 1"
        ).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def info(self) -> dict[str, Any]:
        """What `vigie db info` prints: schema version, row counts, time range."""
        versions = self.con.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
        oldest, newest = self.con.execute(
            "SELECT min(published_at), max(published_at) FROM mentions"
        ).fetchall()[0]
        return {
            "migrations": [(v, n, a) for v, n, a in versions],
            "counts": self.counts(),
            "buckets": int(
                self.con.execute("SELECT count(*) FROM mention_buckets").fetchall()[0][0]
            ),
            "oldest": oldest,
            "newest": newest,
        }
