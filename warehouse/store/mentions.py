"""Mentions: a cycle's load in one transaction, stories, titles, the windows detection reads,
retention and export."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from vigie.errors import WarehouseError
from vigie.models import (
    Mention,
    PollRecord,
    QuarantinedMention,
    SourceOutcome,
    StoryCopy,
    StorySignature,
    WindowMention,
)
from vigie.settings import Source
from vigie.titles import TITLE_WINDOW, TitleSighting, merge_keyed, title_key
from warehouse.store.base import (
    _FORMULA_PATTERN,
    DRILL_SOURCES,
    SENTIMENT_LABEL_SQL,
    STORY_KEYS,
    _json_default,
)
from warehouse.store.sources import SourceStore

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LoadResult:
    new_mentions: int
    new_by_source: dict[str, int]
    quarantined: int


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


class MentionStore(SourceStore):
    """Mentions: a cycle's load in one transaction, stories, titles, the windows detection reads,"""

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
        polls: Sequence[PollRecord] = (),
    ) -> LoadResult:
        """Record source runs and state, new mentions, quarantine and stories in one transaction
        (with what adaptive polling learnt of the sources fetched, `polls`)."""
        try:
            with self.transaction():
                if signatures:
                    self._insert_signatures(signatures, now)
                mentions, title_keys = self._merge_same_titles(mentions)
                new_by_source = self._insert_mentions(cycle_id, mentions)
                self._record_titles(mentions, title_keys)
                refused = Counter(item.mention.source for item in quarantined)
                self._record_sources(cycle_id, sources, outcomes, new_by_source, refused, now)
                self._record_polls(polls)
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
            # Microseconds: 100,000 copies of 9,161 times become 9,161 datetimes, not 100,000.
            "m.sentiment, m.story_id, m.url, epoch_us(m.published_at), m.mention_id, "
            # A mention's text comes once, with its first copy: a headline carried by a
            # hundred outlets is read once (a 10x burst: 100,000 copies of 9,161 mentions).
            "row_number() OVER copies = 1, "
            "CASE WHEN row_number() OVER copies = 1 THEN m.title END, "
            "CASE WHEN row_number() OVER copies = 1 THEN m.summary END "
            "FROM mentions m "
            "LEFT JOIN mention_sightings s ON s.mention_id = m.mention_id "
            "LEFT JOIN sources src ON src.name = s.source "
            "LEFT JOIN first_cycle f ON f.source = m.source AND f.cycle_id = m.cycle_id "
            "WHERE list_contains(m.topics, ?) AND m.published_at >= ? AND m.published_at < ? "
            f"AND f.cycle_id IS NULL AND m.source NOT IN {DRILL_SOURCES} "
            "WINDOW copies AS (PARTITION BY m.mention_id) "
            "ORDER BY m.published_at, m.mention_id, 1",
            [topic, start, end],
        ).fetchall()
        texts = {row[7]: (row[9], row[10]) for row in rows if row[8]}
        times = {at: UNIX_EPOCH + timedelta(microseconds=at) for at in {row[6] for row in rows}}
        copies = []
        for source, platform, tier, sentiment, story, url, at, mention_id, *_ in rows:
            title, summary = texts[mention_id]
            mention = WindowMention(source, platform, tier, title, summary, sentiment, story)
            copies.append(StoryCopy(mention, url, times[at]))
        return copies

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
