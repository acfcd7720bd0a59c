"""Daily maintenance of the warehouse: backup, retention, export, checkpoint; a markdown artifact
says what each step did.

Schedule: daily at 03:15 in the organisation's time zone (prefect.yaml, deployment
`maintenance`).
Parameters: `export_days` (how many past UTC days to export, one file per day, replaced whole so
mentions collected late are included), `export_format` (parquet | csv), `export_folder` (default:
`exports/` beside the warehouse), `keep_backups` (how many daily backups stay in `backups/` beside
the warehouse: a restore loses at most a day), `config_path`.
The backup comes first and is read whole before the oldest is deleted (a damaged warehouse fails
the run, with the file to restore, and deletes no good backup).
Retention is the same as `vigie db prune`; the export the same as `vigie db export` for one day;
the CHECKPOINT folds DuckDB's write-ahead log into the file (as `vigie db backup` does first).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath
from flows.watch_cycle import load_config_task
from tasks.operations import (
    ExportFormat,
    backup_task,
    checkpoint_task,
    export_days_task,
    maintenance_markdown,
    prune_raw_text_task,
    publish_markdown_task,
    run_clock,
)


def _run_name() -> str:
    return f"maintenance {datetime.now(UTC):%Y-%m-%d}"


@flow(name="maintenance", flow_run_name=_run_name)
def maintain_warehouse(
    export_days: Annotated[int, Field(ge=0, le=31)] = 2,
    export_format: ExportFormat = "parquet",
    export_folder: Annotated[str, Field(max_length=4096)] = "",
    keep_backups: Annotated[int, Field(ge=1, le=366)] = 7,
    config_path: ConfigPath = "vigie.toml",
) -> dict[str, Any]:
    """Back up the warehouse, export the last days' mentions, apply retention, checkpoint.

    Args:
        export_days: Past UTC days to export, one file each (0: no export); 2 exports
            yesterday again with the mentions collected late.
        export_format: parquet (compact, typed) or csv (for spreadsheets).
        export_folder: Folder of the exports; empty: exports/ beside the warehouse file.
        keep_backups: Daily backups kept in backups/ beside the warehouse (the oldest go).
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    now = run_clock(datetime.now(UTC), flow_run.scheduled_start_time)
    settings, _ = load_config_task(config_path)
    folder = Path(export_folder) if export_folder else settings.warehouse_path.parent / "exports"
    backup = backup_task(settings, keep_backups, now)
    # Export first: retention may erase the text of what is about to be exported.
    exports = export_days_task(settings, folder, export_days, now.date(), export_format)
    retention = prune_raw_text_task(settings, now)
    sizes = checkpoint_task(settings)
    publish_markdown_task(
        "maintenance",
        maintenance_markdown(retention, exports, sizes, backup),
        "What the last maintenance did: backup, retention, export, checkpoint",
    )
    return {
        "backup": str(backup.path),
        "backups_deleted": [str(p) for p in backup.removed],
        "retention": retention.describe(),
        "exports": [{**asdict(e), "day": str(e.day), "path": str(e.path)} for e in exports],
        "bytes_before_checkpoint": sizes[0],
        "bytes_after_checkpoint": sizes[1],
    }
