"""The scheduled operations on a real DuckDB file: daily export, retention, checkpoint, digest
queued once; and the maintenance and replay flows under a real (temporary) Prefect server, with
the artifacts they publish."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tasks.detect.replay import ReplayedAlert
from tasks.notify.delivery import DeliveryReport
from tasks.operations import (
    digest_markdown,
    export_days,
    maintenance_markdown,
    prune_raw_text,
    queue_digest,
    replay_markdown,
)
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import Mention
from warehouse.backup import checkpoint_warehouse
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _mention(n: int, published_at: datetime) -> Mention:
    return Mention(
        mention_id=f"m{n}",
        source="Le Quotidien",
        platform="news",
        tier=1,
        url=f"https://quotidien.example/a/{n}",
        title=f"Laiterie Boréale {n}",
        summary="Résumé",
        author="Rédaction",
        published_at=published_at,
        collected_at=NOW,
        language="fr",
        story_id=f"s{n}",
        topics=("marque",),
    )


def _load(path: Path, mentions: list[Mention], cycle: str = "c1") -> None:
    with open_warehouse(path) as con:
        Store(con).load_cycle(cycle, [], [], mentions, [], NOW)


def _ids(file: Path) -> list[str]:
    return [
        r[0]
        for r in duckdb.connect()
        .execute(f"SELECT mention_id FROM read_parquet('{file}') ORDER BY 1")
        .fetchall()
    ]


def test_export_writes_one_file_per_utc_day_and_a_rerun_adds_late_mentions(
    tmp_path: Path,
) -> None:
    path, folder = tmp_path / "wh.duckdb", tmp_path / "exports"
    yesterday = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    _load(
        path, [_mention(1, yesterday), _mention(2, yesterday - timedelta(days=1)), _mention(3, NOW)]
    )
    first = export_days(path, folder, days=2, today=date(2026, 11, 25))
    assert [(e.day, e.path.name, e.mentions) for e in first] == [
        (date(2026, 11, 23), "mentions-20261123.parquet", 1),
        (date(2026, 11, 24), "mentions-20261124.parquet", 1),
    ]
    _load(path, [_mention(4, yesterday - timedelta(hours=5))], "c2")  # collected late
    again = export_days(path, folder, days=1, today=date(2026, 11, 25))
    assert again[0].mentions == 2
    assert _ids(folder / "mentions-20261124.parquet") == ["m1", "m4"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "mentions-20261123.parquet",
        "mentions-20261124.parquet",
    ]  # no partial file left, today (incomplete) not exported


def test_retention_and_checkpoint_say_what_they_did(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _load(path, [_mention(1, NOW - timedelta(days=400)), _mention(2, NOW)])
    kept = prune_raw_text(path, 0, NOW)
    assert kept.cutoff is None and "kept forever" in kept.describe()
    pruned = prune_raw_text(path, 365, NOW)
    assert (pruned.erased, pruned.dropped) == (1, 0)
    assert pruned.describe().startswith("Raw text older than 2025-11-25 erased from 1 mentions")
    assert prune_raw_text(path, 365, NOW).erased == 0  # a rerun erases nothing more
    before, after = checkpoint_warehouse(path)
    assert after <= before and after == path.stat().st_size  # the log is folded into the file
    markdown = maintenance_markdown(pruned, [], (before, after))
    assert "| export | none (export_days is 0) |" in markdown


def test_a_digest_is_queued_once_for_its_period(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    path = settings.warehouse_path
    _load(path, [_mention(1, NOW - timedelta(hours=2))])
    first = queue_digest(path, settings, period="daily", end=None, now=NOW)
    second = queue_digest(path, settings, period="daily", end=None, now=NOW + timedelta(minutes=20))
    assert not first.already_queued and second.already_queued
    assert first.message.message_id == second.message.message_id
    assert first.digest.topics[0].mentions == 1
    with open_warehouse(path) as con:
        assert con.execute("SELECT count(*) FROM outbox").fetchall() == [(1,)]
    report = DeliveryReport(sent=[first.message.message_id])
    markdown = digest_markdown(first, report)
    assert markdown.startswith("# Digest daily: 2026-11-24 15:00 to 2026-11-25 15:00 UTC")
    assert "Subject: \\[Vigie\\]\\[RÉSUMÉ\\] Laiterie Boréale" in markdown
    assert "| marque | 1 | 0 |" in markdown
    assert "to 3 recipient(s); queued." in markdown
    assert "Outbox: 1 sent, 0 failed, 0 held." in markdown
    assert "already in the outbox, not queued again." in digest_markdown(second, None)


def test_replay_markdown_escapes_topic_names() -> None:
    alert = ReplayedAlert(
        "[x](javascript:alert(1)) | <b>", NOW, "crise", 72.0, {"volume": 35.0}, "crise", None
    )
    markdown = replay_markdown(
        [alert], since=NOW - timedelta(days=1), until=NOW, step=timedelta(hours=1)
    )
    assert "](javascript" not in markdown and "<b>" not in markdown
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\) \\| \\<b\\>" in markdown
    assert "1 alert(s) would have opened" in markdown


def test_replay_markdown_names_the_breaking_story_that_opened_an_alert() -> None:
    alert = ReplayedAlert(
        "marque", NOW, "alerte", 50.0, {"breaking": 30.0}, "alerte", None, "s1", "Usine | <i>"
    )
    markdown = replay_markdown(
        [alert], since=NOW - timedelta(days=1), until=NOW, step=timedelta(hours=1)
    )
    assert "| marque (breaking story: Usine \\| \\<i\\>) | alerte |" in markdown


@pytest.mark.prefect
def test_the_maintenance_flow_exports_prunes_checkpoints_and_reports_it(
    prefect_harness: str, tmp_path: Path
) -> None:
    from prefect.artifacts import Artifact

    from flows.maintenance import maintain_warehouse

    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    today = datetime.now(UTC)
    _load(
        settings.warehouse_path,
        [_mention(1, today - timedelta(days=1)), _mention(2, today - timedelta(days=500))],
    )
    result = maintain_warehouse(export_days=1, config_path=str(settings.config_path))
    [export] = result["exports"]
    assert export["mentions"] == 1
    assert Path(export["path"]).parent == settings.warehouse_path.parent / "exports"
    assert result["retention"].endswith(
        "erased from 1 mentions; 0 quarantined records deleted; aggregates kept"
    )
    artifact = Artifact.get("maintenance")
    assert artifact is not None
    markdown = str(artifact.data)
    assert "| retention | Raw text older than" in markdown
    assert f"| export {export['day']} | 1 mentions written to" in markdown
    assert "| checkpoint | write-ahead log folded into the file" in markdown
    # The daily backup: checked, in backups/ beside the warehouse, and named in the report.
    backup = Path(result["backup"])
    assert backup.parent == settings.warehouse_path.parent / "backups" and backup.exists()
    assert "| backup | checked backup written to" in markdown


@pytest.mark.prefect
def test_the_replay_flow_shows_its_progress_and_its_result(
    prefect_harness: str, tmp_path: Path
) -> None:
    from prefect.artifacts import Artifact

    from flows.replay import replay_detection

    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    _load(settings.warehouse_path, [_mention(1, NOW - timedelta(hours=3))])
    alerts = replay_detection(
        since=NOW - timedelta(days=1),
        until=NOW,
        step_minutes=60,
        config_path=str(settings.config_path),
    )
    assert alerts == []
    progress = Artifact.get("replay-progress")
    assert progress is not None and progress.type == "progress"
    assert float(progress.data) == 100.0  # type: ignore[arg-type]
    report = Artifact.get("replay")
    assert report is not None
    assert "every 60 min with the current settings; 0 alert(s) would have opened" in str(
        report.data
    )
    with pytest.raises(ValueError, match="until must come after since"):
        replay_detection(
            since=NOW, until=NOW - timedelta(hours=1), config_path=str(settings.config_path)
        )
