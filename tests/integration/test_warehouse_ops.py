"""Operating the warehouse: retention, export, backup and restore, quality report, degraded
sources, concurrent writers and a load killed mid-way — on real DuckDB files and processes."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tasks.enrich.quality import flag_degraded_sources, quality_report
from tasks.enrich.validate import ValidationOutcome
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.errors import WarehouseDamaged, WarehouseError
from vigie.models import FetchResult, Mention, QuarantinedMention, SourceOutcome
from vigie.settings import Settings
from warehouse.backup import backup_warehouse, check_warehouse, restore_warehouse, rotate_backups
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]

# A writer in its own process: loads `batches` batches of `size` mentions numbered from `offset`.
WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from vigie.models import FetchResult, Mention, SourceOutcome
    from vigie.settings import Source
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    path, offset, batches, size = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    source = Source(name="w", url="http://127.0.0.1/w", platform="news", tier=2)
    fetch = FetchResult("w", source.url, "ok", now, 0.1, 200, b"", {}, None, None, None, None)
    for b in range(batches):
        first = offset + b * size
        mentions = [
            Mention(f"m{first + i}", "w", "news", 2, f"https://w.example/{first + i}",
                    "Laiterie Boréale", "", None, now - timedelta(minutes=i % 600), now, "fr",
                    f"s{i}", ("marque",))
            for i in range(size)
        ]
        print("loading", flush=True)
        with open_warehouse(path, lock_wait_s=120) as con:
            Store(con).load_cycle(f"c{offset}-{b}", [source], [SourceOutcome(fetch, "ok", size)],
                                  mentions, [], now)
    print("done", flush=True)
    """
)


def _writer(path: Path, offset: int, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(offset), str(batches), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _scalar(path: Path, sql: str) -> object:
    with open_warehouse(path) as con:
        return con.execute(sql).fetchall()[0][0]


def _mention(n: int, **changes: object) -> Mention:
    base = Mention(
        mention_id=f"m{n}",
        source="Le Quotidien",
        platform="news",
        tier=1,
        url=f"https://quotidien.example/a/{n}",
        title=f"Laiterie Boréale {n}",
        summary="Résumé",
        author="Rédaction",
        published_at=NOW - timedelta(days=n),
        collected_at=NOW,
        language="fr",
        story_id=f"s{n}",
        topics=("marque",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _load(path: Path, mentions: list[Mention], quarantined: list[QuarantinedMention] = ()) -> None:  # type: ignore[assignment]
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [], [], mentions, list(quarantined), NOW)


def test_retention_erases_old_text_and_keeps_ids_and_aggregates(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1), _mention(40), _mention(400)])
    with open_warehouse(path) as con:
        erased, _ = Store(con).apply_retention(NOW - timedelta(days=30))
        again, _ = Store(con).apply_retention(NOW - timedelta(days=30))
        rows = con.execute(
            "SELECT mention_id, title, summary, author FROM mentions ORDER BY 1"
        ).fetchall()
        buckets = con.execute("SELECT sum(mentions) FROM mention_buckets").fetchall()[0][0]
    assert (erased, again) == (2, 0)
    assert rows == [
        ("m1", "Laiterie Boréale 1", "Résumé", "Rédaction"),
        ("m40", "", "", None),
        ("m400", "", "", None),
    ]
    assert buckets == 3
    _load(path, [_mention(40)])  # the old item seen again is not counted twice
    assert _scalar(path, "SELECT sum(mentions) FROM mention_buckets") == 3


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_the_mentions_of_the_period(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(n) for n in (1, 2, 3, 10)])
    target = tmp_path / f"out.{fmt}"
    with open_warehouse(path) as con:
        count = Store(con).export_mentions(
            target, since=NOW - timedelta(days=5), until=NOW, fmt=fmt
        )
    reader = "read_parquet" if fmt == "parquet" else "read_csv_auto"
    exported = (
        duckdb.connect()
        .execute(f"SELECT mention_id, topics FROM {reader}('{target}') ORDER BY mention_id")
        .fetchall()
    )
    assert count == 3
    assert exported == [("m1", "marque"), ("m2", "marque"), ("m3", "marque")]


FORMULAS = {
    "title": '=HYPERLINK("https://evil.example","Cliquez")',
    "summary": "+cmd|' /C calc'!A0",
    "author": "@SUM(1+1)*cmd|' /C calc'!A0",
    "url": "-2+3+cmd|' /C calc'!A0",
}


def test_a_csv_export_neutralises_every_cell_a_spreadsheet_would_run(tmp_path: Path) -> None:
    """OWASP's rule for CSV injection: a text cell starting with =, +, -, @, a tab or a carriage
    return gets a leading single quote; the Parquet export keeps the text as it is."""
    path = tmp_path / "wh.duckdb"
    hostile = [
        _mention(1, **FORMULAS),
        _mention(2, title="\t=1+1", summary="\r=1+1", topics=("=marque",)),
        _mention(3, title="Laiterie = qualité", summary="-"),
    ]
    _load(path, hostile)
    with open_warehouse(path) as con:
        store = Store(con)
        for fmt in ("csv", "parquet"):
            store.export_mentions(
                tmp_path / f"out.{fmt}", since=NOW - timedelta(days=5), until=NOW, fmt=fmt
            )
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        rows = {row["mention_id"]: row for row in csv.DictReader(handle)}
    cells = [value for row in rows.values() for value in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    assert {key: rows["m1"][key] for key in FORMULAS} == {k: "'" + v for k, v in FORMULAS.items()}
    assert (rows["m2"]["title"], rows["m2"]["summary"]) == ("'\t=1+1", "'\r=1+1")
    assert rows["m2"]["topics"] == "'=marque"
    assert (rows["m3"]["title"], rows["m3"]["summary"]) == ("Laiterie = qualité", "'-")
    assert rows["m1"]["tier"] == "1"  # numbers stay numbers
    parquet = duckdb.connect().execute(
        f"SELECT title FROM read_parquet('{tmp_path / 'out.parquet'}') WHERE mention_id = 'm1'"
    )
    assert parquet.fetchall() == [(FORMULAS["title"],)]


def test_backup_is_consistent_and_restore_brings_it_back(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1), _mention(2)])
    size = backup_warehouse(path, tmp_path / "backups" / "wh-1.duckdb")
    _load(path, [_mention(3)])
    assert size > 0
    restore_warehouse(tmp_path / "backups" / "wh-1.duckdb", path)
    assert _scalar(path, "SELECT count(*) FROM mentions") == 2


def test_rotated_backups_keep_the_newest_and_a_damaged_warehouse_deletes_no_good_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1), _mention(2)])
    made = [rotate_backups(path, keep=2, now=NOW + timedelta(days=d))[0] for d in range(3)]
    kept = sorted((tmp_path / "backups").glob("wh-*.duckdb"))
    assert kept == made[1:]
    # Cut short: the backup of that day fails, names the warehouse, and the two good ones stay.
    with open_warehouse(path) as con:
        con.execute("CHECKPOINT")
    with path.open("r+b") as damaged:
        damaged.truncate(path.stat().st_size // 2)
    with pytest.raises(WarehouseDamaged, match=f"the warehouse {path} is damaged"):
        rotate_backups(path, keep=2, now=NOW + timedelta(days=3))
    assert sorted((tmp_path / "backups").glob("wh-*.duckdb")) == made[1:]
    assert all(check_warehouse(b).rows > 0 for b in made[1:])


def test_a_corrupt_block_in_the_middle_is_found_by_the_full_read(tmp_path: Path) -> None:
    """Damage no metadata shows: a data block overwritten inside the file. Opening and counting
    still work; `check_warehouse` reads every row and fails on the block's checksum."""
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(n, summary=f"résumé {n} " * 50) for n in range(1, 3000)])
    with open_warehouse(path) as con:
        con.execute("CHECKPOINT")
        blocks = con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('mentions') "
            "WHERE persistent AND block_id >= 0 AND column_name = 'summary' ORDER BY 1"
        ).fetchall()
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()
    offset = 3 * 4096 + int(blocks[0][0]) * int(block_size[0][0]) + 512
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xff" * 4096)
    assert _scalar(path, "SELECT count(*) FROM mentions") == 2999
    with pytest.raises(WarehouseDamaged, match=f"the warehouse {path} is damaged .*checksum"):
        check_warehouse(path)


def test_restore_refuses_a_file_that_is_not_a_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1)])
    bogus = tmp_path / "bogus.duckdb"
    duckdb.connect(str(bogus)).close()
    with pytest.raises(WarehouseError, match="is not a Vigie warehouse"):
        restore_warehouse(bogus, path)
    assert _scalar(path, "SELECT count(*) FROM mentions") == 1


def test_a_backup_taken_while_a_writer_runs_is_whole_and_the_writer_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [])
    writer = _writer(path, 0, batches=15, size=400)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "loading"
    backups = [backup_warehouse(path, tmp_path / f"b{i}.duckdb") for i in range(3)]
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert all(size > 0 for size in backups)
    for i in range(3):
        copy = duckdb.connect(str(tmp_path / f"b{i}.duckdb"), read_only=True)
        count = copy.execute("SELECT count(*) FROM mentions").fetchall()[0][0]
        assert count % 400 == 0  # whole batches only: never half a load
        copy.close()
    assert _scalar(path, "SELECT count(*) FROM mentions") == 6000


def test_two_writers_in_two_processes_both_complete_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    first = _writer(path, 0, batches=10, size=300)
    second = _writer(path, 100_000, batches=10, size=300)
    for writer in (first, second):
        out, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err
        assert out.strip().endswith("done")
    assert _scalar(path, "SELECT count(*) FROM mentions") == 6000
    assert _scalar(path, "SELECT sum(mentions) FROM mention_buckets") == 6000
    assert _scalar(path, "SELECT count(*) FROM source_runs") == 20


def test_a_load_killed_mid_way_leaves_the_warehouse_as_before_and_the_rerun_completes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1, mention_id="before")])
    writer = _writer(path, 0, batches=1, size=200_000)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "loading"
    time.sleep(1.0)
    assert writer.poll() is None, "the load finished before it could be killed"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert _scalar(path, "SELECT count(*) FROM mentions") == 1
    assert _scalar(path, "SELECT sum(mentions) FROM mention_buckets") == 1
    assert _scalar(path, "SELECT count(*) FROM source_runs") == 0
    rerun = _writer(path, 0, batches=1, size=200_000)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert _scalar(path, "SELECT count(*) FROM mentions") == 200_001
    assert _scalar(path, "SELECT sum(mentions) FROM mention_buckets") == 200_001


OPERATOR_TOML = """
[[cell.members]]
name = "Opérateur"
email = "ops@laiterie-boreale.example"
role = "operator"
level = 3
"""


def _settings(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + CELL_TOML + OPERATOR_TOML)


def _register_source(path: Path) -> None:
    fetch = FetchResult("Le Quotidien", "http://127.0.0.1/feed", "ok", NOW, 0.1, 200)
    with open_warehouse(path) as con:
        Store(con).load_cycle("c0", [_settings_source()], [SourceOutcome(fetch, "ok")], [], [], NOW)


def _settings_source():  # type: ignore[no-untyped-def]
    from vigie.settings import Source

    return Source(name="Le Quotidien", url="http://127.0.0.1/feed")


def test_a_mostly_failing_source_is_flagged_once_and_its_recovery_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _register_source(path)
    bad = [QuarantinedMention(_mention(n, url="ftp://x"), ("match_regex(url)",)) for n in (2, 3, 4)]
    failing = ValidationOutcome([_mention(1)], bad, 4)
    healthy = ValidationOutcome([_mention(5), _mention(6), _mention(7)], [], 3)
    with open_warehouse(path) as con:
        store = Store(con)
        first = flag_degraded_sources(store, settings, failing, now=NOW)
        second = flag_degraded_sources(store, settings, failing, now=NOW + timedelta(minutes=10))
        third = flag_degraded_sources(store, settings, healthy, now=NOW + timedelta(minutes=20))
        messages = con.execute(
            "SELECT kind, recipients, subject, html FROM outbox ORDER BY created_at"
        ).fetchall()
    assert (first, second, third) == (["Le Quotidien: degraded"], [], ["Le Quotidien: recovered"])
    assert [m[2] for m in messages] == [
        "[Vigie][QUALITÉ] Source dégradée : Le Quotidien",
        "[Vigie][QUALITÉ] Source rétablie : Le Quotidien",
    ]
    assert messages[0][1] == ["ops@laiterie-boreale.example"]
    assert "3 des 4 mentions" in messages[0][3] and "match_regex(url)" in messages[0][3]


def test_quality_report_measures_drift_and_duplicates(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _load(
        path,
        [
            _mention(1),
            _mention(2, language=None, summary=""),
            _mention(3, mention_id="dup", url="https://quotidien.example/a/1"),
        ],
        [QuarantinedMention(_mention(9, url="ftp://x"), ("match_regex(url)",))],
    )
    with open_warehouse(path) as con:
        report = quality_report(
            Store(con), since=NOW - timedelta(days=7), now=NOW, settings=settings
        )
    assert report.mentions == 3
    assert report.undetermined_language == round(1 / 3, 4)
    assert report.empty_summary == round(1 / 3, 4)
    assert report.duplicate_urls == 1
    assert report.per_source == [
        {
            "source": "Le Quotidien",
            "loaded": 3,
            "quarantined": 1,
            "quarantined_share": 0.25,
            "degraded_since": None,
        }
    ]
    assert {c.label: c.success for c in report.checks}["expect_column_values_to_match_regex(url)"]
