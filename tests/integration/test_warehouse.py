"""The warehouse on a real DuckDB file: migrations, idempotent and transactional loads, locks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigie.errors import WarehouseError
from vigie.models import FetchResult, Mention, QuarantinedMention, SourceOutcome
from vigie.settings import Source
from warehouse.connection import connect, migrations, open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SOURCE = Source(name="Le Quotidien", url="http://127.0.0.1/feed.xml", platform="news", tier=1)


def _mention(n: int, **changes: object) -> Mention:
    mention = Mention(
        mention_id=f"m{n}",
        source="Le Quotidien",
        platform="news",
        tier=1,
        url=f"https://quotidien.example/a/{n}",
        title=f"Laiterie Boréale, article {n}",
        summary="Résumé",
        author=None,
        published_at=NOW - timedelta(minutes=n),
        collected_at=NOW,
        language="fr",
        story_id=f"s{n}",
        topics=("marque",),
    )
    return replace(mention, **changes)  # type: ignore[arg-type]


def _outcome(status: str = "ok", error: str | None = None) -> SourceOutcome:
    fetch = FetchResult(
        source="Le Quotidien",
        url=SOURCE.url,
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        duration_s=0.1,
        http_status=200 if status == "ok" else 500,
        body=b"<rss/>" if status == "ok" else None,
        etag='"v1"' if status == "ok" else None,
        last_modified="Wed, 25 Nov 2026 14:00:00 GMT" if status == "ok" else None,
        error=error,
    )
    return SourceOutcome(fetch, status, items=3 if status == "ok" else 0, error=error)  # type: ignore[arg-type]


def _count(path: Path, table: str) -> int:
    with open_warehouse(path) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def test_migrations_create_every_contract_table(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as con:
        tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        versions = con.execute("SELECT version FROM schema_migrations").fetchall()
    assert {
        "mentions",
        "sources",
        "source_runs",
        "quarantine",
        "stories",
        "alerts",
        "alert_events",
        "outbox",
    } <= tables
    assert [v for (v,) in versions] == [v for v, _, _ in migrations()]


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with open_warehouse(path):
        pass
    with open_warehouse(path) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == len(
            migrations()
        )


def test_loading_the_same_batch_twice_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    batch = [_mention(1), _mention(2), _mention(3)]
    with open_warehouse(path) as con:
        first = Store(con).load_cycle("c1", [SOURCE], [_outcome()], batch, [], NOW)
    with open_warehouse(path) as con:
        second = Store(con).load_cycle("c2", [SOURCE], [_outcome()], batch, [], NOW)
    assert first.new_mentions == 3
    assert second.new_mentions == 0
    assert _count(path, "mentions") == 3
    assert _count(path, "source_runs") == 2


def test_source_validators_are_kept_for_the_next_cycle(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle("c1", [SOURCE], [_outcome()], [], [], NOW)
        states = store.source_states()
    assert states["Le Quotidien"].etag == '"v1"'
    assert states["Le Quotidien"].last_modified == "Wed, 25 Nov 2026 14:00:00 GMT"


def test_failures_are_counted_and_reset_by_a_success(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle("c1", [SOURCE], [_outcome("error", "HTTP 500")], [], [], NOW)
        store.load_cycle("c2", [SOURCE], [_outcome("error", "timed out")], [], [], NOW)
        failing = store.source_health()[0]
        store.load_cycle("c3", [SOURCE], [_outcome()], [], [], NOW)
        healed = store.source_health()[0]
        runs = con.execute("SELECT status, error FROM source_runs ORDER BY cycle_id").fetchall()
    assert failing[1] == "error" and failing[4] == 2 and failing[5] == "timed out"
    assert failing[6] is None
    assert healed[1] == "ok" and healed[4] == 0
    assert runs == [("error", "HTTP 500"), ("error", "timed out"), ("ok", None)]


def test_a_failed_load_leaves_the_warehouse_as_before(tmp_path: Path) -> None:
    """A row the database refuses rolls back the whole cycle's load, source runs included."""
    path = tmp_path / "wh.duckdb"
    broken = _mention(2, title=None)
    with open_warehouse(path) as con, pytest.raises(WarehouseError):
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], [_mention(1), broken], [], NOW)
    assert _count(path, "mentions") == 0
    assert _count(path, "source_runs") == 0


def test_quarantined_rows_keep_their_reasons(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    bad = QuarantinedMention(_mention(9, url="javascript:alert(1)"), ("match_regex(url)",))
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], [], [bad], NOW)
        rows = con.execute("SELECT mention_id, reasons, record->>'url' FROM quarantine").fetchall()
    assert rows == [("m9", ["match_regex(url)"], "javascript:alert(1)")]


def test_syndicated_copies_form_one_story(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    copies = [_mention(1, story_id="s"), _mention(2, story_id="s", source="Radio")]
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], copies, [], NOW)
        stories = con.execute("SELECT story_id, mentions, sources FROM stories").fetchall()
    assert stories == [("s", 2, 2)]


def test_window_counts_bucket_mentions_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    batch = [_mention(n) for n in (5, 10, 70, 130, 135)]  # minutes before NOW
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle("c1", [SOURCE], [_outcome()], batch, [], NOW)
        counts, first = store.window_counts("marque", end=NOW, window=timedelta(hours=1), windows=4)
    assert counts == [0, 2, 1, 2]
    assert first == NOW - timedelta(minutes=135)


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_warehouse_is_reported_after_the_wait(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    holder = _hold_lock(path, 5)
    try:
        with pytest.raises(WarehouseError, match="locked by another process"):
            connect(path, lock_wait_s=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_waits_for_the_lock_to_be_released(tmp_path: Path) -> None:
    """Two processes writing at once: the second waits for the first instead of failing."""
    path = tmp_path / "wh.duckdb"
    holder = _hold_lock(path, 1.0)
    try:
        started = time.monotonic()
        con = connect(path, lock_wait_s=20)
        waited = time.monotonic() - started
        con.close()
    finally:
        holder.wait()
    assert holder.returncode == 0
    assert waited > 0.2  # it did have to wait for the other process


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(WarehouseError, match=f"the warehouse {path} is damaged .*vigie db restore"):
        connect(path, lock_wait_s=0.5)


def _bucket_total(path: Path) -> int:
    return _rows_one(path, "SELECT coalesce(sum(mentions), 0) FROM mention_buckets")


def _rows_one(path: Path, sql: str) -> int:
    with open_warehouse(path) as con:
        return int(con.execute(sql).fetchall()[0][0])


def test_aggregates_count_each_mention_once_per_topic(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    batch = [_mention(1), _mention(2, topics=("marque", "direction")), _mention(3)]
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], batch, [], NOW)
        Store(con).load_cycle("c2", [SOURCE], [_outcome()], batch, [], NOW)
        per_topic = con.execute(
            "SELECT topic, sum(mentions) FROM mention_buckets GROUP BY topic ORDER BY topic"
        ).fetchall()
    assert per_topic == [("direction", 1), ("marque", 3)]


def test_aggregates_keep_language_and_sentiment_labels(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    batch = [
        _mention(1, sentiment=-0.8),
        _mention(2, sentiment=0.0, language=None),
        _mention(3, sentiment=0.6, language="en"),
        _mention(4),
    ]
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], batch, [], NOW)
        labels = con.execute(
            "SELECT language, sentiment, sum(mentions)::INTEGER FROM mention_counts_1d "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert labels == [
        ("", "neutral", 1),
        ("en", "positive", 1),
        ("fr", "negative", 1),
        ("fr", "unknown", 1),
    ]


def test_hourly_and_daily_views_roll_up_the_5_minute_buckets(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    batch = [_mention(n) for n in (1, 2, 30, 61, 62)]  # minutes before 15:00
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], batch, [], NOW)
        hourly = con.execute(
            "SELECT hour(bucket_start), sum(mentions)::INTEGER FROM mention_counts_1h "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        daily = con.execute("SELECT sum(mentions)::INTEGER FROM mention_counts_1d").fetchall()
    assert hourly == [(13, 2), (14, 3)]
    assert daily == [(5,)]


def test_a_file_of_the_previous_version_is_upgraded_in_place(tmp_path: Path) -> None:
    """A warehouse made by version 001 keeps its data and gains the aggregates of 002."""
    path = tmp_path / "wh.duckdb"
    first = migrations()[0]
    con = connect(path)
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    con.execute(first[2].read_text(encoding="utf-8"))
    con.execute("INSERT INTO schema_migrations VALUES (1, 'init', now())")
    con.execute(
        "INSERT INTO mentions VALUES ('m1', 'Le Quotidien', 'news', 1, 'https://q.example/1', "
        "'Titre', '', NULL, TIMESTAMPTZ '2026-11-25 14:07:00+00', now(), 'fr', 's1', "
        "['marque'], 'c0')"
    )
    con.close()
    with open_warehouse(path) as con:
        versions = [
            v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        ]
        buckets = con.execute(
            "SELECT bucket_start, topic, mentions FROM mention_buckets"
        ).fetchall()
        kept = con.execute("SELECT title, sentiment FROM mentions").fetchall()
    assert versions == [v for v, _, _ in migrations()]
    assert buckets == [(datetime(2026, 11, 25, 14, 5, tzinfo=UTC), "marque", 1)]
    assert kept == [("Titre", None)]


def test_a_quarantined_row_without_an_id_is_kept(tmp_path: Path) -> None:
    """Validation refuses rows with no id; the quarantine keeps them under a derived key."""
    path = tmp_path / "wh.duckdb"
    nameless = QuarantinedMention(_mention(5, mention_id=None), ("not_be_null(mention_id)",))
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [SOURCE], [_outcome()], [], [nameless], NOW)
        rows = con.execute("SELECT mention_id, record->>'url' FROM quarantine").fetchall()
    assert len(rows) == 1
    assert rows[0][0].startswith("no-id-") and rows[0][1] == "https://quotidien.example/a/5"


def test_every_source_that_carried_a_mention_is_a_sighting(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    first = _mention(1, seen_in=("Radio Boréale",))
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle("c1", [SOURCE], [_outcome()], [first], [], NOW)
        # The next cycle, a third source carries the same article: one mention, three places.
        later = replace(
            first, source="Le Devoir", seen_in=(), collected_at=NOW + timedelta(hours=1)
        )
        result = store.load_cycle(
            "c2", [SOURCE], [_outcome()], [later], [], NOW + timedelta(hours=1)
        )
        sightings = con.execute(
            "SELECT source, first_seen_at FROM mention_sightings WHERE mention_id = 'm1' "
            "ORDER BY first_seen_at, source"
        ).fetchall()
    assert result.new_mentions == 0
    assert _count(path, "mentions") == 1
    assert [s for s, _ in sightings] == ["Le Quotidien", "Radio Boréale", "Le Devoir"]
    assert sightings[-1][1] == NOW + timedelta(hours=1)
