"""Daily maintenance of the warehouse: retention, export, checkpoint; a markdown artifact says
what each step did.

Schedule: daily at 03:15 in the organisation's time zone (prefect.yaml, deployment
`maintenance`).
Parameters: `export_days` (how many past UTC days to export, one file per day, replaced whole so
mentions collected late are included), `export_format` (parquet | csv), `export_folder` (default:
`exports/` beside the warehouse), `config_path`.
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
    config_path: ConfigPath = "vigie.toml",
) -> dict[str, Any]:
    """Export the last days' mentions, apply retention, checkpoint the warehouse.

    Args:
        export_days: Past UTC days to export, one file each (0: no export); 2 exports
            yesterday again with the mentions collected late.
        export_format: parquet (compact, typed) or csv (for spreadsheets).
        export_folder: Folder of the exports; empty: exports/ beside the warehouse file.
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    now = run_clock(datetime.now(UTC), flow_run.scheduled_start_time)
    settings, _ = load_config_task(config_path)
    folder = Path(export_folder) if export_folder else settings.warehouse_path.parent / "exports"
    # Export first: retention may erase the text of what is about to be exported.
    exports = export_days_task(settings, folder, export_days, now.date(), export_format)
    retention = prune_raw_text_task(settings, now)
    sizes = checkpoint_task(settings)
    publish_markdown_task(
        "maintenance",
        maintenance_markdown(retention, exports, sizes),
        "What the last maintenance did: retention, export, checkpoint",
    )
    return {
        "retention": retention.describe(),
        "exports": [{**asdict(e), "day": str(e.day), "path": str(e.path)} for e in exports],
        "bytes_before_checkpoint": sizes[0],
        "bytes_after_checkpoint": sizes[1],
    }
