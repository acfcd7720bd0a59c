"""Sources: their state between cycles, their runs, health and coverage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from vigie.models import EntryFreshness, PollRecord, SourceCondition, SourceOutcome, SourceState
from vigie.settings import Source
from warehouse.store.base import DRILL_SOURCES, StoreBase


class SourceStore(StoreBase):
    """Sources: their state between cycles, their runs, health and coverage."""

    def source_states(self) -> dict[str, SourceState]:
        rows = self.con.execute(
            "SELECT name, etag, last_modified, marker, last_run_at, "
            "coalesce(consecutive_failures, 0), newest_entry_at, entry_gap_s, poll_interval_s, "
            "coalesce(quiet_polls, 0), content_hash, full_fetch_at, server_wait_until "
            "FROM sources"
        ).fetchall()
        return {row[0]: SourceState(*row) for row in rows}

    def _record_sources(
        self,
        cycle_id: str,
        sources: Sequence[Source],
        outcomes: Sequence[SourceOutcome],
        new_by_source: dict[str, int],
        refused: Counter[str],
        now: datetime,
    ) -> None:
        # One statement per table, whatever the number of sources: a thousand feeds would
        # otherwise cost thousands of round trips.
        if sources:
            configured = pd.DataFrame(
                {
                    "name": [s.name for s in sources],
                    "kind": [s.kind for s in sources],
                    "url": [s.url for s in sources],
                    "platform": [s.platform for s in sources],
                    "tier": [s.tier for s in sources],
                }
            )
            self.con.register("configured_sources", configured)
            try:
                self.con.execute(
                    "INSERT INTO sources (name, kind, url, platform, tier) "
                    "SELECT name, kind, url, platform, tier FROM configured_sources "
                    "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, "
                    "platform = excluded.platform, tier = excluded.tier"
                )
            finally:
                self.con.unregister("configured_sources")
        if not outcomes:
            return
        runs = pd.DataFrame(
            {
                "source": [o.fetch.source for o in outcomes],
                "started_at": pd.to_datetime([o.fetch.started_at for o in outcomes], utc=True),
                "duration_s": [float(o.fetch.duration_s) for o in outcomes],
                "status": [o.status for o in outcomes],
                "http_status": pd.array([o.fetch.http_status for o in outcomes], dtype="Int64"),
                "bytes": [o.fetch.size for o in outcomes],
                "items": [o.items for o in outcomes],
                "new_mentions": [new_by_source.get(o.fetch.source, 0) for o in outcomes],
                "error": [o.error for o in outcomes],
                "quarantined": [refused.get(o.fetch.source, 0) for o in outcomes],
                "etag": [o.fetch.etag for o in outcomes],
                "last_modified": [o.fetch.last_modified for o in outcomes],
                "marker": pd.array([o.fetch.marker for o in outcomes], dtype="object"),
            }
        )
        self.con.register("cycle_runs", runs)
        try:
            self.con.execute(
                "INSERT INTO source_runs (cycle_id, source, started_at, duration_s, status, "
                "http_status, bytes, items, new_mentions, error, quarantined) "
                "SELECT ?, source, started_at, duration_s, status, http_status, bytes, items, "
                "new_mentions, error, quarantined FROM cycle_runs ON CONFLICT DO NOTHING",
                [cycle_id],
            )
            self.con.execute(
                "UPDATE sources SET last_status = 'error', last_error = r.error, "
                "last_run_at = ?, consecutive_failures = sources.consecutive_failures + 1 "
                "FROM cycle_runs r WHERE sources.name = r.source AND r.status = 'error'",
                [now],
            )
            # The validators are kept only once the body was parsed, so a body that failed
            # to parse is fetched again in full next time. A deferred run (the fetch step had
            # no time for it) changes nothing of its source: it is due first next cycle.
            self.con.execute(
                "UPDATE sources SET last_status = r.status, last_error = NULL, "
                "last_run_at = ?, last_ok_at = ?, consecutive_failures = 0, etag = r.etag, "
                "last_modified = r.last_modified, "
                "marker = coalesce(r.marker::VARCHAR, sources.marker) "
                "FROM cycle_runs r WHERE sources.name = r.source "
                "AND r.status IN ('ok', 'not_modified')",
                [now, now],
            )
        finally:
            self.con.unregister("cycle_runs")

    def _record_polls(self, polls: Sequence[PollRecord]) -> None:
        """Keep what adaptive polling learnt (tasks/collect/schedule.py); a hash and the time of
        a full fetch only when a body was parsed."""
        if not polls:
            return
        self.con.execute(
            "UPDATE sources SET poll_interval_s = p.interval, quiet_polls = p.quiet, "
            "content_hash = coalesce(p.hash, sources.content_hash), "
            "full_fetch_at = coalesce(p.full_at, sources.full_fetch_at), "
            "server_wait_until = p.wait_until, next_poll_at = p.next_at "
            "FROM (SELECT unnest(?::VARCHAR[]) AS name, unnest(?::DOUBLE[]) AS interval, "
            "unnest(?::INTEGER[]) AS quiet, unnest(?::VARCHAR[]) AS hash, "
            "unnest(?::TIMESTAMPTZ[]) AS full_at, unnest(?::TIMESTAMPTZ[]) AS wait_until, "
            "unnest(?::TIMESTAMPTZ[]) AS next_at) AS p WHERE sources.name = p.name",
            [
                [p.source for p in polls],
                [p.poll_interval_s for p in polls],
                [p.quiet_polls for p in polls],
                [p.content_hash for p in polls],
                [p.full_fetch_at for p in polls],
                [p.server_wait_until for p in polls],
                [p.next_poll_at for p in polls],
            ],
        )

    def failed_sources(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Sources with failed runs in [start, end): failures, runs, the last error, whether
        the last run of the period failed too; also sources whose health is not ok now."""
        rows = self.con.execute(
            "WITH runs AS (SELECT source, count(*) FILTER (status = 'error') AS failures, "
            "count(*) FILTER (status <> 'deferred') AS runs, "
            "arg_max(error, started_at) FILTER (status = 'error') AS error, "
            "max(started_at) FILTER (status = 'error') AS last_failure_at, "
            "arg_max(status, started_at) FILTER (status <> 'deferred') = 'error' "
            "AS still_failing FROM source_runs "
            f"WHERE started_at >= ? AND started_at < ? AND source NOT IN {DRILL_SOURCES} "
            "GROUP BY source) "
            "SELECT coalesce(r.source, s.name), coalesce(r.failures, 0), coalesce(r.runs, 0), "
            "coalesce(r.error, s.health_reason, s.last_error), r.last_failure_at, "
            "coalesce(r.still_failing, false), coalesce(s.health, 'ok') "
            "FROM runs r FULL JOIN sources s ON s.name = r.source "
            "WHERE (coalesce(r.failures, 0) > 0 OR coalesce(s.health, 'ok') <> 'ok') "
            "AND NOT coalesce(s.drill, false) "
            "ORDER BY coalesce(r.failures, 0) DESC, 1",
            [start, end],
        ).fetchall()
        keys = (
            "source",
            "failures",
            "runs",
            "last_error",
            "last_failure_at",
            "still_failing",
            "health",
        )
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def source_health(self) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT name, last_status, last_run_at, last_ok_at, consecutive_failures, last_error, "
            "degraded_since, coalesce(health, 'ok'), health_since, health_reason "
            "FROM sources WHERE NOT coalesce(drill, false) ORDER BY name"
        ).fetchall()

    def typical_fetch_seconds(self, since: datetime) -> dict[str, float]:
        """Each source's median fetch time over its runs since `since` that got an answer
        (`vigie check` judges from it whether each host's sources fit in a cycle)."""
        rows = self.con.execute(
            "SELECT source, median(duration_s) FROM source_runs "
            "WHERE started_at >= ? AND status IN ('ok', 'not_modified') GROUP BY source",
            [since],
        ).fetchall()
        return {str(source): float(seconds) for source, seconds in rows}

    def degraded_states(self, names: Sequence[str]) -> dict[str, bool]:
        """Whether each named source (among those known) is marked degraded now."""
        rows = self.con.execute(
            "SELECT name, degraded_since IS NOT NULL FROM sources "
            "WHERE name IN (SELECT unnest(?::VARCHAR[]))",
            [list(names)],
        ).fetchall()
        return {name: bool(degraded) for name, degraded in rows}

    def set_degraded(self, source: str, degraded: bool, now: datetime) -> str | None:
        """Record a source's quality verdict; return "degraded" or "recovered" on a change."""
        rows = self.con.execute(
            "SELECT degraded_since FROM sources WHERE name = ?", [source]
        ).fetchall()
        if not rows:
            return None
        was = rows[0][0] is not None
        if degraded == was:
            return None
        self.con.execute(
            "UPDATE sources SET degraded_since = ? WHERE name = ?",
            [now if degraded else None, source],
        )
        return "degraded" if degraded else "recovered"

    def record_freshness(self, freshness: Sequence[EntryFreshness]) -> None:
        """Keep each source's newest entry date (never moving back) and its usual gap."""
        if not freshness:
            return
        # One statement for all sources: executemany costs about 1.4 ms a row in DuckDB.
        self.con.execute(
            "UPDATE sources SET "
            "newest_entry_at = greatest(coalesce(sources.newest_entry_at, f.newest), f.newest), "
            "entry_gap_s = coalesce(f.gap, sources.entry_gap_s) "
            "FROM (SELECT unnest(?::VARCHAR[]) AS name, unnest(?::TIMESTAMPTZ[]) AS newest, "
            "unnest(?::DOUBLE[]) AS gap) AS f WHERE sources.name = f.name",
            [
                [f.source for f in freshness],
                [f.newest_at for f in freshness],
                [f.gap_s for f in freshness],
            ],
        )

    def source_conditions(self, names: Sequence[str]) -> list[SourceCondition]:
        """What the health verdict needs of each named source that has been run."""
        rows = self.con.execute(
            "SELECT name, consecutive_failures, last_error, newest_entry_at, entry_gap_s, "
            "coalesce(health, 'ok'), health_since, last_ok_at FROM sources "
            "WHERE name IN (SELECT unnest(?::VARCHAR[])) AND last_run_at IS NOT NULL "
            "ORDER BY name",
            [list(names)],
        ).fetchall()
        return [SourceCondition(*row) for row in rows]

    def set_health(self, source: str, state: str, reason: str, now: datetime) -> None:
        self.con.execute(
            "UPDATE sources SET health = ?, health_since = ?, health_reason = ? WHERE name = ?",
            [state, now, reason, source],
        )

    def covered_shares(
        self,
        weights: Mapping[str, float],
        *,
        start: datetime,
        window: timedelta,
        windows: int,
        until: datetime,
    ) -> dict[int, float]:
        """For each of `windows` windows from `start`, the summed `weights` of the sources
        fetched successfully (ok or not modified) in it; a fetch from the end of the last
        window until `until` counts in the last. Windows with none are absent.

        Summed here rather than in Python: 10,000 sources polled hourly make 1.68 million
        runs in a week's baseline, which took 35 s to read and bucket (bench_load.py)."""
        if not weights:
            return {}
        window_us = window // timedelta(microseconds=1)
        rows = self.con.execute(
            "WITH w AS (SELECT unnest(?::VARCHAR[]) AS source, unnest(?::DOUBLE[]) AS weight), "
            "seen AS (SELECT DISTINCT least((epoch_us(started_at) - epoch_us(?::TIMESTAMPTZ)) "
            "// ?, ?) AS idx, source FROM source_runs WHERE status IN ('ok', 'not_modified') "
            f"AND started_at >= ? AND started_at < ? AND source NOT IN {DRILL_SOURCES}) "
            "SELECT idx, sum(weight) FROM seen JOIN w USING (source) GROUP BY idx",
            [list(weights), list(weights.values()), start, window_us, windows - 1, start, until],
        ).fetchall()
        return {int(index): float(share) for index, share in rows}

    def first_collection_run(self) -> datetime | None:
        """The first fetch ever recorded; a drill's runs say nothing of when the watch began."""
        first: datetime | None = self.con.execute(
            f"SELECT min(started_at) FROM source_runs WHERE source NOT IN {DRILL_SOURCES}"
        ).fetchall()[0][0]
        return first

    def topic_source_shares(
        self, topic: str, *, start: datetime, end: datetime, sources: Sequence[str]
    ) -> dict[str, float]:
        """Each configured source's share of the topic's mentions in [start, end); equal
        shares when the topic has none yet, so that a gap still counts."""
        rows = self.con.execute(
            "SELECT source, count(*) FROM mentions WHERE list_contains(topics, ?) "
            "AND published_at >= ? AND published_at < ? "
            "AND source IN (SELECT unnest(?::VARCHAR[])) GROUP BY source",
            [topic, start, end, list(sources)],
        ).fetchall()
        total = sum(count for _, count in rows)
        if not total:
            return {name: 1.0 / len(sources) for name in sources} if sources else {}
        return {source: count / total for source, count in rows}
