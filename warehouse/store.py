"""The queries and writes of the warehouse, over an injected DuckDB connection.

Writes are idempotent so that a retried or repeated cycle changes nothing it already did:
mentions are keyed by `mention_id` and inserted with ON CONFLICT DO NOTHING, source runs by
(cycle, source), outbox messages by a deterministic id. A cycle's load is one transaction: a
crash mid-load leaves the warehouse as it was before it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from vigie.errors import WarehouseError
from vigie.models import (
    EntryFreshness,
    InlineImage,
    Mention,
    OutboxMessage,
    QuarantinedMention,
    SourceCondition,
    SourceOutcome,
    SourceState,
    StoryCopy,
    StorySignature,
    VolumeSignal,
    WindowMention,
)
from vigie.settings import Source
from vigie.titles import TITLE_WINDOW, TitleSighting, merge_keyed, title_key


@dataclass(frozen=True, slots=True)
class LoadResult:
    new_mentions: int
    new_by_source: dict[str, int]
    quarantined: int


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


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


# The sentiment label of a score in [-1, 1], as the bucket tables and reports use it.
SENTIMENT_LABEL_SQL = (
    "CASE WHEN sentiment IS NULL THEN 'unknown' WHEN sentiment <= -0.05 THEN 'negative' "
    "WHEN sentiment >= 0.05 THEN 'positive' ELSE 'neutral' END"
)

# What a drill created (migration 012): real figures leave these out.
DRILL_SOURCES = "(SELECT name FROM sources WHERE drill)"
# A text cell starting with =, +, -, @, a tab or a carriage return is a formula to spreadsheets.
_FORMULA_PATTERN = "'^[-=+@\t\r]'"
# The columns of a top story, as top_stories and collected_stories return them.
STORY_KEYS = (
    "story_id",
    "title",
    "url",
    "source",
    "tier",
    "mentions",
    "sources",
    "first_published_at",
    "topics",
)
DRILL_ALERTS = "(SELECT alert_id FROM alerts WHERE drill)"


class Store:
    """Named reads and writes of the warehouse; the connection is the caller's."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def source_states(self) -> dict[str, SourceState]:
        rows = self.con.execute(
            "SELECT name, etag, last_modified, marker, last_run_at, consecutive_failures "
            "FROM sources"
        ).fetchall()
        return {
            name: SourceState(name, etag, modified, marker, last_run, failures or 0)
            for name, etag, modified, marker, last_run, failures in rows
        }

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

    def recent_story_signatures(self, since: datetime) -> list[StorySignature]:
        rows = self.con.execute(
            "SELECT story_id, signature FROM story_signatures WHERE created_at >= ?", [since]
        ).fetchall()
        return [StorySignature(story_id, tuple(signature)) for story_id, signature in rows]

    def load_cycle(
        self,
        cycle_id: str,
        sources: Sequence[Source],
        outcomes: Sequence[SourceOutcome],
        mentions: Sequence[Mention],
        quarantined: Sequence[QuarantinedMention],
        now: datetime,
        signatures: Sequence[StorySignature] = (),
    ) -> LoadResult:
        """Record source runs and state, new mentions, quarantine and stories in one transaction."""
        try:
            with self.transaction():
                if signatures:
                    self._insert_signatures(signatures, now)
                mentions, title_keys = self._merge_same_titles(mentions)
                new_by_source = self._insert_mentions(cycle_id, mentions)
                self._record_titles(mentions, title_keys)
                refused = Counter(item.mention.source for item in quarantined)
                self._record_sources(cycle_id, sources, outcomes, new_by_source, refused, now)
                self._record_outside_volumes(sources, outcomes, now)
                self._quarantine(cycle_id, quarantined, now)
                self._refresh_stories(mentions)
        except duckdb.Error as err:
            raise WarehouseError(f"loading cycle {cycle_id} failed: {err}") from err
        return LoadResult(sum(new_by_source.values()), new_by_source, len(quarantined))

    def _merge_same_titles(
        self, mentions: Sequence[Mention]
    ) -> tuple[list[Mention], list[str | None]]:
        """The batch with copies of one headline merged (`vigie.titles`) against the title
        keys stored within a week of its mentions, and each mention's key. Read in the load's
        transaction, so a copy another process loaded just before is seen."""
        keys = [title_key(m) for m in mentions]
        keyed = [(m.published_at, key) for m, key in zip(mentions, keys, strict=True) if key]
        if not keyed:
            return list(mentions), keys
        rows = self.con.execute(
            "SELECT title_key, mention_id, published_at FROM mention_titles "
            "WHERE title_key IN (SELECT unnest(?::VARCHAR[])) "
            "AND published_at BETWEEN ? AND ?",
            [
                sorted({key for _, key in keyed}),
                min(at for at, _ in keyed) - TITLE_WINDOW,
                max(at for at, _ in keyed) + TITLE_WINDOW,
            ],
        ).fetchall()
        return merge_keyed(mentions, keys, (TitleSighting(*row) for row in rows))

    def _record_titles(self, mentions: Sequence[Mention], keys: Sequence[str | None]) -> None:
        rows = [(key, m) for m, key in zip(mentions, keys, strict=True) if key is not None]
        if not rows:
            return
        batch = pd.DataFrame(
            {
                "title_key": [key for key, _ in rows],
                "mention_id": [m.mention_id for _, m in rows],
                "published_at": pd.to_datetime([m.published_at for _, m in rows], utc=True),
            }
        )
        self.con.register("title_batch", batch)
        try:
            self.con.execute(
                "INSERT INTO mention_titles SELECT DISTINCT title_key, mention_id, published_at "
                "FROM title_batch ON CONFLICT DO NOTHING"
            )
        finally:
            self.con.unregister("title_batch")

    def _record_outside_volumes(
        self, sources: Sequence[Source], outcomes: Sequence[SourceOutcome], now: datetime
    ) -> None:
        """Keep the volume timelines fetched (gdelt sources); a bucket fetched again takes the
        newer count."""
        queries = {s.name: s.query or "" for s in sources}
        rows = [
            (o.fetch.source, queries.get(o.fetch.source, ""), point.bucket_start, point.value)
            for o in outcomes
            for point in o.fetch.volumes
        ]
        if not rows:
            return
        self.con.executemany(
            "INSERT INTO outside_volumes VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (source, bucket_start) DO UPDATE SET value = excluded.value, "
            "topic_or_query = excluded.topic_or_query, fetched_at = excluded.fetched_at",
            [(*row, now) for row in rows],
        )

    def outside_volume(
        self, end: datetime, *, hours_before: int = 24
    ) -> list[tuple[str, str, int, float | None]]:
        """Per source with an outside timeline over the day before `end`: (source, query,
        articles in the hour before `end`, articles per hour over the `hours_before` hours
        before that, or over the part of them its timeline covers; None when none)."""
        last_hour = end - timedelta(hours=1)
        day_before = last_hour - timedelta(hours=hours_before)
        rows = self.con.execute(
            "SELECT source, arg_max(topic_or_query, bucket_start), "
            "coalesce(sum(value) FILTER (WHERE bucket_start >= ?), 0), "
            "sum(value) FILTER (WHERE bucket_start >= ? AND bucket_start < ?), "
            "epoch(?::TIMESTAMPTZ) - epoch(min(bucket_start)) "
            "FROM outside_volumes WHERE bucket_start < ? GROUP BY source "
            "HAVING count(*) FILTER (WHERE bucket_start >= ?) > 0 ORDER BY source",
            [last_hour, day_before, last_hour, last_hour, end, day_before],
        ).fetchall()
        found: list[tuple[str, str, int, float | None]] = []
        for source, query, last, before, span_s in rows:
            hours = max(1.0, min(float(hours_before), float(span_s) / 3600))
            rate = None if before is None else float(before) / hours
            found.append((source, query, int(last), rate))
        return found

    def _insert_signatures(self, signatures: Sequence[StorySignature], now: datetime) -> None:
        # One statement from a registered frame: executemany costs about 0.7 ms a row.
        batch = pd.DataFrame(
            {
                "story_id": [s.story_id for s in signatures],
                "signature": [list(s.signature) for s in signatures],
            }
        )
        self.con.register("signature_batch", batch)
        try:
            self.con.execute(
                "INSERT INTO story_signatures SELECT story_id, signature::UBIGINT[], ? "
                "FROM signature_batch ON CONFLICT DO NOTHING",
                [now],
            )
        finally:
            self.con.unregister("signature_batch")

    def _insert_mentions(self, cycle_id: str, mentions: Sequence[Mention]) -> dict[str, int]:
        if not mentions:
            return {}
        batch = pd.DataFrame(
            {
                "mention_id": [m.mention_id for m in mentions],
                "source": [m.source for m in mentions],
                "platform": [m.platform for m in mentions],
                "tier": [m.tier for m in mentions],
                "url": [m.url for m in mentions],
                "title": [m.title for m in mentions],
                "summary": [m.summary for m in mentions],
                "author": [m.author for m in mentions],
                "published_at": pd.to_datetime([m.published_at for m in mentions], utc=True),
                "collected_at": pd.to_datetime([m.collected_at for m in mentions], utc=True),
                "language": [m.language for m in mentions],
                "story_id": [m.story_id for m in mentions],
                "topics": [list(m.topics) for m in mentions],
                "cycle_id": cycle_id,
                "sentiment": pd.array([m.sentiment for m in mentions], dtype="Float64"),
                "reach": pd.array([m.reach for m in mentions], dtype="Int64"),
            }
        )
        self.con.register("mention_batch", batch)
        try:
            # Only mentions the warehouse does not hold yet count, once each: this is what makes
            # a repeated load leave every count unchanged.
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE new_mentions AS SELECT * FROM mention_batch b "
                "WHERE NOT EXISTS (SELECT 1 FROM mentions m WHERE m.mention_id = b.mention_id) "
                "QUALIFY row_number() OVER (PARTITION BY mention_id) = 1"
            )
            rows = self.con.execute(
                "SELECT source, count(*) FROM new_mentions GROUP BY source"
            ).fetchall()
            self.con.execute(
                "INSERT INTO mention_buckets "
                "SELECT time_bucket(INTERVAL 5 MINUTE, published_at), topic, platform, "
                "coalesce(language, ''), "
                f"{SENTIMENT_LABEL_SQL}, count(*) "
                "FROM (SELECT *, unnest(topics) AS topic FROM new_mentions) GROUP BY ALL "
                "ON CONFLICT DO UPDATE SET mentions = mention_buckets.mentions + excluded.mentions"
            )
            self.con.execute(
                "INSERT INTO mentions (mention_id, source, platform, tier, url, title, summary, "
                "author, published_at, collected_at, language, story_id, topics, cycle_id, "
                "sentiment, reach) SELECT mention_id, source, platform, tier, url, title, "
                "summary, author, published_at, collected_at, language, story_id, "
                "topics::VARCHAR[], cycle_id, sentiment, reach FROM new_mentions"
            )
            self.con.execute("DROP TABLE new_mentions")
            sightings = pd.DataFrame(
                [(m.mention_id, s) for m in mentions for s in (m.source, *m.seen_in)],
                columns=["mention_id", "source"],
            )
            self.con.register("sighting_batch", sightings)
            try:
                # A mention already stored, now carried by another source, is one more place.
                self.con.execute(
                    "INSERT INTO mention_sightings SELECT DISTINCT mention_id, source, ? "
                    "FROM sighting_batch ON CONFLICT DO NOTHING",
                    [mentions[0].collected_at],
                )
            finally:
                self.con.unregister("sighting_batch")
        finally:
            self.con.unregister("mention_batch")
        return {source: count for source, count in rows}

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
            # to parse is fetched again in full next time.
            self.con.execute(
                "UPDATE sources SET last_status = r.status, last_error = NULL, "
                "last_run_at = ?, last_ok_at = ?, consecutive_failures = 0, etag = r.etag, "
                "last_modified = r.last_modified, "
                "marker = coalesce(r.marker::VARCHAR, sources.marker) "
                "FROM cycle_runs r WHERE sources.name = r.source AND r.status <> 'error'",
                [now, now],
            )
        finally:
            self.con.unregister("cycle_runs")

    def _quarantine(
        self, cycle_id: str, quarantined: Sequence[QuarantinedMention], now: datetime
    ) -> None:
        if not quarantined:
            return
        refused = pd.DataFrame(
            {
                "mention_id": [q.mention.mention_id for q in quarantined],
                "source": [q.mention.source for q in quarantined],
                "reasons": [list(q.reasons) for q in quarantined],
                "record": [
                    json.dumps(asdict(q.mention), default=_json_default, ensure_ascii=False)
                    for q in quarantined
                ],
            }
        )
        self.con.register("refused_mentions", refused)
        try:
            self.con.execute(
                "INSERT INTO quarantine (cycle_id, mention_id, source, reasons, record, "
                "quarantined_at) SELECT ?, coalesce(mention_id, 'no-id-' || md5(record)), "
                "source, reasons::VARCHAR[], record::JSON, ? FROM refused_mentions "
                "ON CONFLICT DO NOTHING",
                [cycle_id, now],
            )
        finally:
            self.con.unregister("refused_mentions")

    def _refresh_stories(self, mentions: Sequence[Mention]) -> None:
        story_ids = sorted({m.story_id for m in mentions})
        if not story_ids:
            return
        self.con.execute(
            "INSERT OR REPLACE INTO stories "
            "SELECT story_id, arg_min(title, published_at), arg_min(url, published_at), "
            "min(published_at), max(published_at), count(*)::INTEGER, "
            "count(DISTINCT source)::INTEGER "
            "FROM mentions WHERE story_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY story_id",
            [story_ids],
        )

    def window_counts(
        self, topic: str, *, end: datetime, window: timedelta, windows: int
    ) -> tuple[list[int], datetime | None]:
        """Mentions of `topic` per window, oldest first, the last one ending at `end`.

        Read from the 5-minute aggregates, so it stays fast after years of data and after the
        raw text is pruned; `end` and `window` should be whole 5-minute buckets. Also returns
        the start of the topic's first bucket, so detection can wait for a baseline.
        """
        start = end - window * windows
        rows = self.con.execute(
            "SELECT floor((epoch(bucket_start) - epoch(?::TIMESTAMPTZ)) / ?)::BIGINT AS idx, "
            "sum(mentions) FROM mention_buckets WHERE topic = ? "
            "AND bucket_start >= ? AND bucket_start < ? GROUP BY idx",
            [start, window.total_seconds(), topic, start, end],
        ).fetchall()
        counts = [0] * windows
        for index, count in rows:
            if 0 <= index < windows:
                counts[int(index)] = int(count)
        first = self.con.execute(
            "SELECT min(bucket_start) FROM mention_buckets WHERE topic = ?", [topic]
        ).fetchall()[0][0]
        return counts, first

    def top_mentions(
        self, topic: str, *, start: datetime, end: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The mentions of a window, one per story, major outlets and larger stories first."""
        rows = self.con.execute(
            "SELECT story_id, arg_min(title, tier), arg_min(url, tier), arg_min(source, tier), "
            "min(tier), count(*), max(published_at) FROM mentions "
            "WHERE list_contains(topics, ?) AND published_at >= ? AND published_at < ? "
            "GROUP BY story_id ORDER BY min(tier), count(*) DESC, max(published_at) DESC "
            "LIMIT ?",
            [topic, start, end, limit],
        ).fetchall()
        keys = ("story_id", "title", "url", "source", "tier", "copies", "published_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def window_mentions(
        self, topic: str, *, start: datetime, end: datetime
    ) -> tuple[list[WindowMention], int]:
        """The topic's mentions published in [start, end), as the signals read them, and how
        many more were left out as backfill.

        Backfill: what a source brought in its first successful cycle (a new source's archive,
        items without a date placed at their collection time) is history, not news.
        """
        # A mention is read as carried by the best-tier source that carried it (a major outlet's
        # copy of a headline is one more sighting of the first outlet's mention, and is still
        # its pick-up).
        rows = self.con.execute(
            "WITH first_cycle AS (SELECT source, arg_min(cycle_id, started_at) AS cycle_id "
            "FROM source_runs WHERE status = 'ok' GROUP BY source), "
            "window_ AS (SELECT * FROM mentions WHERE list_contains(topics, ?) "
            "AND published_at >= ? AND published_at < ?), "
            "best AS (SELECT s.mention_id, arg_min(s.source, c.tier) AS source, "
            "min(c.tier) AS tier FROM mention_sightings s JOIN sources c ON c.name = s.source "
            # Seen no earlier than a day before the window (published, then collected): the
            # years of sightings before are skipped, not scanned (10 M rows: 1 s against 0.05).
            "WHERE s.first_seen_at >= ?::TIMESTAMPTZ - INTERVAL 1 DAY "
            "AND s.mention_id IN (SELECT mention_id FROM window_) GROUP BY s.mention_id) "
            "SELECT CASE WHEN b.tier < m.tier THEN b.source ELSE m.source END, m.platform, "
            "least(m.tier, coalesce(b.tier, m.tier)), m.title, m.summary, m.sentiment, "
            "m.story_id, f.cycle_id IS NOT NULL AS backfill FROM window_ m "
            "LEFT JOIN best b ON b.mention_id = m.mention_id "
            "LEFT JOIN first_cycle f ON f.source = m.source AND f.cycle_id = m.cycle_id",
            [topic, start, end, start],
        ).fetchall()
        kept = [WindowMention(*row[:7]) for row in rows if not row[7]]
        return kept, len(rows) - len(kept)

    def negative_share(self, topic: str, *, start: datetime, end: datetime) -> float:
        """Share of negative among the topic's scored mentions in [start, end), from the
        aggregates (0 when nothing was scored)."""
        negative, scored = self.con.execute(
            "SELECT coalesce(sum(mentions) FILTER (sentiment = 'negative'), 0), "
            "coalesce(sum(mentions) FILTER (sentiment <> 'unknown'), 0) FROM mention_buckets "
            "WHERE topic = ? AND bucket_start >= ? AND bucket_start < ?",
            [topic, start, end],
        ).fetchall()[0]
        return float(negative) / float(scored) if scored else 0.0

    # The reads of the digest (tasks/notify/digest.py): one period [start, end) at a time.

    def topic_period_counts(
        self, topics: Sequence[str], *, start: datetime, end: datetime
    ) -> dict[str, tuple[int, int, int]]:
        """Per topic: (mentions, negative, scored) published in [start, end), from the
        aggregates; a topic without any is (0, 0, 0)."""
        rows = self.con.execute(
            "SELECT topic, coalesce(sum(mentions), 0), "
            "coalesce(sum(mentions) FILTER (sentiment = 'negative'), 0), "
            "coalesce(sum(mentions) FILTER (sentiment <> 'unknown'), 0) FROM mention_buckets "
            "WHERE topic IN (SELECT unnest(?::VARCHAR[])) AND bucket_start >= ? "
            "AND bucket_start < ? GROUP BY topic",
            [list(topics), start, end],
        ).fetchall()
        found = {topic: (int(a), int(b), int(c)) for topic, a, b, c in rows}
        return {topic: found.get(topic, (0, 0, 0)) for topic in topics}

    def top_stories(
        self, *, start: datetime, end: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        """The stories with mentions published in [start, end): major outlets first, then
        those carried by more sources, then more mentions; each with the title and link of its
        best-tier (then earliest) mention and how many sources carried it."""
        rows = self.con.execute(
            "WITH period AS (SELECT * FROM mentions WHERE published_at >= ? "
            f"AND published_at < ? AND title <> '' AND source NOT IN {DRILL_SOURCES}), "
            "carried AS (SELECT p.story_id, count(DISTINCT coalesce(s.source, p.source)) AS n "
            "FROM period p LEFT JOIN mention_sightings s ON s.mention_id = p.mention_id "
            "GROUP BY p.story_id) "
            "SELECT p.story_id, arg_min(p.title, (p.tier, p.published_at, p.mention_id)), "
            "arg_min(p.url, (p.tier, p.published_at, p.mention_id)), "
            "arg_min(p.source, (p.tier, p.published_at, p.mention_id)), min(p.tier), "
            "count(*), any_value(c.n), min(p.published_at), "
            "list_sort(list_distinct(flatten(list(p.topics)))) "
            "FROM period p JOIN carried c ON c.story_id = p.story_id GROUP BY p.story_id "
            "ORDER BY min(p.tier), any_value(c.n) DESC, count(*) DESC, min(p.published_at), "
            "p.story_id LIMIT ?",
            [start, end, limit],
        ).fetchall()
        return [dict(zip(STORY_KEYS, row, strict=True)) for row in rows]

    def failed_sources(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Sources with failed runs in [start, end): failures, runs, the last error, whether
        the last run of the period failed too; also sources whose health is not ok now."""
        rows = self.con.execute(
            "WITH runs AS (SELECT source, count(*) FILTER (status = 'error') AS failures, "
            "count(*) AS runs, arg_max(error, started_at) FILTER (status = 'error') AS error, "
            "max(started_at) FILTER (status = 'error') AS last_failure_at, "
            "arg_max(status, started_at) = 'error' AS still_failing FROM source_runs "
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

    def period_alerts(self, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Alerts opened before `end` and not resolved before `start`, oldest first, with who
        acknowledged them and when (from `alert_events`)."""
        rows = self.con.execute(
            "WITH ack AS (SELECT alert_id, arg_min(detail->>'by', occurred_at) AS by, "
            "min(occurred_at) AS at FROM alert_events WHERE kind = 'acknowledged' "
            "GROUP BY alert_id) "
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

    def outbox_has(self, message_id: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT count(*) FROM outbox WHERE message_id = ?", [message_id]
            ).fetchall()[0][0]
        )

    def open_alert_for(self, topic: str) -> StoredAlert | None:
        rows = self.con.execute(
            "SELECT alert_id, topic, level, status, opened_at, mentions_in_window, severity, "
            "last_triggered_at FROM alerts WHERE topic = ? AND status IN ('open', 'acknowledged') "
            "ORDER BY opened_at DESC LIMIT 1",
            [topic],
        ).fetchall()
        return StoredAlert(*rows[0]) if rows else None

    def story_spreads(
        self,
        topic: str,
        *,
        start: datetime,
        end: datetime,
        window: timedelta,
        exclude: Sequence[str] = (),
    ) -> tuple[Counter[int], list[tuple[str, str, datetime]]]:
        """The spread of the topic's stories published in [start, end) but those in
        `exclude`, each source that carried a mention counted (`mention_sightings`), drills
        left out: the baseline of breaking-story detection (archives count: they are history).

        Returns how many stories reached each number of distinct sources among those whose
        copies all fall within one `window` (that is their peak spread: nearly every story),
        and the (story, source, published_at) rows of the others, whose peak the caller
        measures. Aggregated here, a week of a busy topic is read in a fraction of a second.
        """
        rows = self.con.execute(
            "WITH r AS (SELECT m.story_id AS story, coalesce(s.source, m.source) AS source, "
            "m.published_at AS seen_at FROM mentions m "
            "LEFT JOIN mention_sightings s ON s.mention_id = m.mention_id "
            "WHERE list_contains(m.topics, ?) AND m.published_at >= ? AND m.published_at < ? "
            f"AND m.source NOT IN {DRILL_SOURCES} "
            "AND m.story_id NOT IN (SELECT unnest(?::VARCHAR[]))), "
            "a AS (SELECT story, count(DISTINCT source) AS n, "
            "count(DISTINCT source) = 1 OR epoch(max(seen_at)) - epoch(min(seen_at)) < ? "
            "AS simple FROM r GROUP BY story) "
            "SELECT NULL, n, count(*), NULL FROM a WHERE simple GROUP BY n UNION ALL "
            "SELECT r.story, NULL, r.source, r.seen_at FROM r JOIN a ON a.story = r.story "
            "WHERE NOT a.simple",
            [topic, start, end, list(exclude), window.total_seconds()],
        ).fetchall()
        within = Counter({int(n): int(count) for story, n, count, _ in rows if story is None})
        spanning = [(story, source, at) for story, _, source, at in rows if story is not None]
        return within, spanning

    def story_copies(self, topic: str, *, start: datetime, end: datetime) -> list[StoryCopy]:
        """Each source's copy of the topic's stories published in [start, end), oldest first,
        without backfill (a source's first successful cycle: its archive is not news) and
        drills: what breaking-story detection judges and the alert email lists."""
        rows = self.con.execute(
            "WITH first_cycle AS (SELECT source, arg_min(cycle_id, started_at) AS cycle_id "
            "FROM source_runs WHERE status = 'ok' GROUP BY source) "
            "SELECT coalesce(s.source, m.source), m.platform, coalesce(src.tier, m.tier), "
            "m.title, m.summary, m.sentiment, m.story_id, m.url, m.published_at FROM mentions m "
            "LEFT JOIN mention_sightings s ON s.mention_id = m.mention_id "
            "LEFT JOIN sources src ON src.name = s.source "
            "LEFT JOIN first_cycle f ON f.source = m.source AND f.cycle_id = m.cycle_id "
            "WHERE list_contains(m.topics, ?) AND m.published_at >= ? AND m.published_at < ? "
            f"AND f.cycle_id IS NULL AND m.source NOT IN {DRILL_SOURCES} "
            "ORDER BY m.published_at, m.mention_id, 1",
            [topic, start, end],
        ).fetchall()
        return [StoryCopy(WindowMention(*row[:7]), row[7], row[8]) for row in rows]

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
    ) -> None:
        """Open an alert, log the event and queue its emails, all or nothing; `story_id`
        names the breaking story that opened it, if a story did (tasks/detect/breaking.py)."""
        detail = {"level": level, "severity": severity, "contributions": contributions or {}}
        with self.transaction():
            self.con.execute(
                "INSERT INTO alerts (alert_id, topic, level, status, score, reason, opened_at, "
                "updated_at, window_start, window_end, mentions_in_window, baseline, "
                "last_triggered_at, severity, contributions, drill, story_id) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "last_triggered_at, cell_level, coalesce(paged_at, opened_at) FROM alerts "
            "WHERE status = 'open' ORDER BY opened_at"
        ).fetchall()
        return [(StoredAlert(*row[:8]), row[8], row[9]) for row in rows]

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

    def queue(self, message: OutboxMessage, now: datetime) -> bool:
        """Add a message to the outbox once: a second queue of the same id does nothing.

        Returns whether the message was added.
        """
        inserted = self.con.execute(
            "INSERT INTO outbox (message_id, kind, alert_id, recipients, subject, html, "
            "created_at, text, critical, drill) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                message.message_id,
                message.kind,
                message.alert_id,
                list(message.recipients),
                message.subject,
                message.html,
                now,
                message.text,
                message.critical,
                message.drill,
            ],
        ).fetchall()[0][0]
        if inserted and message.images:
            self.con.executemany(
                "INSERT INTO outbox_images VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [[message.message_id, image.cid, image.png] for image in message.images],
            )
        return bool(inserted)

    def outbox_log(self, kind: str) -> list[tuple[str, datetime, datetime | None]]:
        """Every message of a kind ever queued: (message_id, created_at, sent_at), oldest first."""
        rows = self.con.execute(
            "SELECT message_id, created_at, sent_at FROM outbox WHERE kind = ? "
            "ORDER BY created_at, message_id",
            [kind],
        ).fetchall()
        return [(str(mid), created, sent) for mid, created, sent in rows]

    def _outbox_rows(self, where: str, params: list[Any]) -> list[tuple[OutboxMessage, int]]:
        """Unsent messages matching `where`, oldest first, with their inline images and the
        number of attempts made so far."""
        rows = self.con.execute(
            "SELECT message_id, kind, recipients, subject, html, alert_id, text, critical, "
            f"drill, attempts FROM outbox WHERE sent_at IS NULL AND {where} "
            "ORDER BY created_at, message_id",
            params,
        ).fetchall()
        images: dict[str, list[InlineImage]] = {}
        if rows:
            for message_id, cid, png in self.con.execute(
                "SELECT message_id, cid, png FROM outbox_images "
                "WHERE message_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY message_id, cid",
                [[row[0] for row in rows]],
            ).fetchall():
                images.setdefault(message_id, []).append(InlineImage(cid, bytes(png)))
        found = []
        for mid, kind, recipients, subject, body, alert_id, text, critical, drill, tries in rows:
            message = OutboxMessage(
                mid,
                kind,
                tuple(recipients),
                subject,
                body,
                alert_id,
                text or "",
                tuple(images.get(mid, ())),
                bool(critical),
                bool(drill),
            )
            found.append((message, int(tries)))
        return found

    def pending_messages(self, max_attempts: int) -> list[OutboxMessage]:
        """Every unsent message not given up yet, whatever holds it."""
        return [m for m, _ in self._outbox_rows("attempts < ?", [max_attempts])]

    def mark_sent(self, message_id: str, at: datetime) -> None:
        self.con.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_attempt_at = ?, "
            "last_error = NULL, sending_at = NULL, claim_owner = NULL, claim_expires_at = NULL, "
            "held_reason = NULL WHERE message_id = ? AND sent_at IS NULL",
            [at, at, message_id],
        )

    def open_claims(self) -> list[tuple[str, str | None, datetime | None]]:
        """Messages a sender holds for SMTP: (message_id, owner, end of its lease)."""
        rows = self.con.execute(
            "SELECT message_id, claim_owner, claim_expires_at FROM outbox "
            "WHERE sending_at IS NOT NULL AND sent_at IS NULL AND uncertain_at IS NULL "
            "ORDER BY created_at, message_id"
        ).fetchall()
        return [(str(mid), owner, expires) for mid, owner, expires in rows]

    def settle_uncertain(
        self,
        message_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        resend_kinds: Sequence[str],
    ) -> bool:
        """The server may have accepted the message `owner` holds. One of `resend_kinds` whose
        earlier sendings all had a known outcome is due again (its second sending); any other
        becomes *uncertain*, left for a person. Returns whether it is due again.
        """
        again = "(kind IN (SELECT unnest($kinds)) AND coalesce(uncertain_sendings, 0) = 0)"
        rows = self.con.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = $now, "
            f"last_error = $error, uncertain_at = CASE WHEN {again} THEN NULL ELSE $now END, "
            f"sending_at = CASE WHEN {again} THEN NULL ELSE sending_at END, "
            f"claim_owner = CASE WHEN {again} THEN NULL ELSE claim_owner END, "
            "uncertain_sendings = coalesce(uncertain_sendings, 0) + 1, "
            "not_before = NULL, held_reason = NULL "
            "WHERE message_id = $message_id AND sent_at IS NULL AND uncertain_at IS NULL "
            "AND sending_at IS NOT NULL AND claim_owner IS NOT DISTINCT FROM $owner "
            "RETURNING uncertain_at",
            {
                "now": now,
                "error": error[:500],
                "kinds": list(resend_kinds),
                "message_id": message_id,
                "owner": owner,
            },
        ).fetchall()
        return bool(rows) and rows[0][0] is None

    def due_messages(self, max_attempts: int, now: datetime) -> list[tuple[OutboxMessage, int]]:
        """Unsent, unclaimed, certain messages whose hold or back-off is over, with attempts;
        critical mail is never given up after `max_attempts`."""
        return self._outbox_rows(
            "sending_at IS NULL AND uncertain_at IS NULL AND (critical OR attempts < ?) "
            "AND (not_before IS NULL OR not_before <= ?)",
            [max_attempts, now],
        )

    def recent_sends(self, since: datetime) -> dict[str, list[datetime]]:
        """When non-critical mail went to each recipient since `since` (the hourly cap)."""
        rows = self.con.execute(
            "SELECT recipient, sent_at FROM (SELECT unnest(recipients) AS recipient, sent_at "
            "FROM outbox WHERE sent_at >= ? AND NOT critical AND kind <> 'held_note')",
            [since],
        ).fetchall()
        sends: dict[str, list[datetime]] = {}
        for recipient, sent_at in rows:
            sends.setdefault(recipient, []).append(sent_at)
        return sends

    def hold_message(self, message_id: str, until: datetime, reason: str) -> None:
        self.con.execute(
            "UPDATE outbox SET not_before = ?, held_reason = ? WHERE message_id = ?",
            [until, reason, message_id],
        )

    def claim(self, message_id: str, owner: str, now: datetime, lease: timedelta) -> int | None:
        """Take a message for SMTP in the name of `owner` until `now + lease`.

        Returns how many earlier sendings of it ended with no known outcome (0 for a first
        sending), or None when it is already taken, uncertain or sent.
        """
        rows = self.con.execute(
            "UPDATE outbox SET sending_at = ?, claim_owner = ?, claim_expires_at = ? "
            "WHERE message_id = ? AND sent_at IS NULL AND sending_at IS NULL "
            "AND uncertain_at IS NULL RETURNING coalesce(uncertain_sendings, 0)",
            [now, owner, now + lease, message_id],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def release_claim(
        self,
        message_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        backoff: Callable[[int], timedelta] | None,
    ) -> None:
        """The server refused the message or could not be reached: count the attempt; it is due
        again after `backoff(attempts)` (None: at the next delivery).

        Only `owner`'s own claim is released; with `owner` None, only a message nobody holds
        (one this sender read as due and never claimed).
        """
        held_by, holder = ("claim_owner = ?", [owner]) if owner else ("sending_at IS NULL", [])
        rows = self.con.execute(
            "UPDATE outbox SET sending_at = NULL, claim_owner = NULL, claim_expires_at = NULL, "
            "attempts = attempts + 1, last_attempt_at = ?, last_error = ?, "
            "not_before = NULL, held_reason = NULL "
            f"WHERE message_id = ? AND sent_at IS NULL AND uncertain_at IS NULL AND {held_by} "
            "RETURNING attempts",
            [now, error[:500], message_id, *holder],
        ).fetchall()
        if rows and backoff is not None:
            self.con.execute(
                "UPDATE outbox SET not_before = ? WHERE message_id = ?",
                [now + backoff(int(rows[0][0])), message_id],
            )

    def resend(self, message_id: str) -> bool:
        """Make an uncertain (or given-up) message pending again, once someone has checked."""
        rows = self.con.execute(
            "UPDATE outbox SET uncertain_at = NULL, sending_at = NULL, claim_owner = NULL, "
            "claim_expires_at = NULL, not_before = NULL, attempts = 0 "
            "WHERE message_id = ? AND sent_at IS NULL RETURNING message_id",
            [message_id],
        ).fetchall()
        return bool(rows)

    def undelivered(self, max_attempts: int) -> list[tuple[Any, ...]]:
        """Messages that need a person: uncertain, or failed `max_attempts` times (critical
        mail is still tried at every delivery): message_id, kind, subject, uncertain_at,
        attempts, last_error, critical."""
        return self.con.execute(
            "SELECT message_id, kind, subject, uncertain_at, attempts, last_error, critical "
            "FROM outbox "
            "WHERE sent_at IS NULL AND (uncertain_at IS NOT NULL OR attempts >= ?) "
            "ORDER BY created_at",
            [max_attempts],
        ).fetchall()

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

    def delivery_state(
        self, message_id: str
    ) -> tuple[datetime | None, int, str | None, datetime | None] | None:
        """A queued message's sent_at, attempts, last error and not_before (None: not queued)."""
        rows = self.con.execute(
            "SELECT sent_at, attempts, last_error, not_before FROM outbox WHERE message_id = ?",
            [message_id],
        ).fetchall()
        return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None

    def last_notice(self, kinds: Sequence[str]) -> tuple[str, str] | None:
        """The newest outbox message of these kinds, as (kind, message id)."""
        rows = self.con.execute(
            "SELECT kind, message_id FROM outbox WHERE kind IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY created_at DESC, message_id DESC LIMIT 1",
            [list(kinds)],
        ).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def source_health(self) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT name, last_status, last_run_at, last_ok_at, consecutive_failures, last_error, "
            "degraded_since, coalesce(health, 'ok'), health_since, health_reason "
            "FROM sources WHERE NOT coalesce(drill, false) ORDER BY name"
        ).fetchall()

    def open_alerts(self) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT alert_id, topic, level, status, opened_at, mentions_in_window, reason "
            "FROM alerts WHERE status <> 'resolved' AND NOT coalesce(drill, false) "
            "ORDER BY opened_at DESC"
        ).fetchall()

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

    def unsent_count(self) -> int:
        return int(
            self.con.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0]
        )

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
            "// ?, ?) AS idx, source FROM source_runs WHERE status <> 'error' "
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

    def apply_retention(self, cutoff: datetime) -> tuple[int, int]:
        """Erase raw text published before `cutoff`; return (mentions erased, quarantine rows).

        Ids and URLs stay (so an old item seen again is not counted twice), and so do the
        aggregates in `mention_buckets`.
        """
        with self.transaction():
            erased = self.con.execute(
                "UPDATE mentions SET title = '', summary = '', author = NULL "
                "WHERE published_at < ? AND (title <> '' OR summary <> '' OR author IS NOT NULL)",
                [cutoff],
            ).fetchall()[0][0]
            dropped = self.con.execute(
                "DELETE FROM quarantine WHERE quarantined_at < ?", [cutoff]
            ).fetchall()[0][0]
            # Title keys are kept only as long as the titles (a week is all dedup reads).
            self.con.execute(
                "DELETE FROM mention_titles WHERE published_at < ?", [cutoff - TITLE_WINDOW]
            )
        return int(erased), int(dropped)

    def export_mentions(
        self,
        destination: Path,
        *,
        since: datetime,
        until: datetime,
        fmt: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Write the mentions published in [since, until) to a Parquet or CSV file.

        `progress(rows, total)` is told the rows written so far, as DuckDB estimates them
        while its COPY runs (about every 0.2 s), then the total.
        """
        if fmt not in {"parquet", "csv"}:
            raise WarehouseError(f"unknown export format {fmt!r} (parquet or csv)")
        count = int(
            self.con.execute(
                "SELECT count(*) FROM mentions WHERE published_at >= ? AND published_at < ?",
                [since, until],
            ).fetchall()[0][0]
        )
        # COPY cannot take the file name as a parameter; quote it as an SQL string literal.
        target = "'" + str(destination).replace("'", "''") + "'"
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        columns = "* EXCLUDE (topics), array_to_string(topics, ';') AS topics"
        if fmt == "csv":
            columns = self._spreadsheet_safe_columns()
        with _reporting_query_progress(self.con, count, progress):
            self.con.execute(
                f"COPY (SELECT {columns} "
                f"FROM mentions WHERE published_at >= $since AND published_at < $until "
                f"ORDER BY published_at) TO {target} ({options})",
                {"since": since, "until": until},
            )
        return count

    def _spreadsheet_safe_columns(self) -> str:
        """The columns of a CSV export: a text cell that a spreadsheet would read as a formula
        (it starts with =, +, -, @, a tab or a carriage return, as a feed's title
        `=HYPERLINK(...)` does) gets a leading single quote: OWASP's rule for CSV injection."""
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = 'mentions' ORDER BY ordinal_position"
        ).fetchall()
        others: list[tuple[str, str]] = []
        for name, data_type in rows:
            quoted = '"' + str(name).replace('"', '""') + '"'
            if name == "topics":
                value = f"array_to_string({quoted}, ';')"
            elif data_type == "VARCHAR":
                value = quoted
            else:
                others.append((name, quoted))
                continue
            safe = (
                f"CASE WHEN regexp_matches({value}, $formula) THEN chr(39) || {value} "
                f"ELSE {value} END AS {quoted}"
            )
            others.append((name, safe))
        # topics last, as in the Parquet export
        ordered = [c for n, c in others if n != "topics"] + [c for n, c in others if n == "topics"]
        return ", ".join(ordered).replace("$formula", _FORMULA_PATTERN)

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


# Incident mode (tasks/notify/incident.py, flows/incident.py): the `incidents` table and the reads
# of the situation reports, by collection time (what Vigie learned during the incident).

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


@contextmanager
def _reporting_query_progress(
    con: duckdb.DuckDBPyConnection, total: int, progress: Callable[[int, int], None] | None
) -> Iterator[None]:
    """Tell `progress` how far the statement run inside the block has got, as a share of
    `total` rows (DuckDB's own estimate, `query_progress`, read from a second thread)."""
    if progress is None:
        yield
        return
    progress(0, total)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.2):
            share = con.query_progress()  # -1 while nothing runs yet
            if share > 0:
                progress(min(total, round(total * share / 100)), total)

    watcher = threading.Thread(target=poll, name="export-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    progress(total, total)
