"""The warehouse side of email previews (`vigie preview`): a read-only connection and the reads
that pick what to preview.

A preview never writes: the file is opened read-only (nothing migrated, nothing queued), so a
warehouse whose schema is behind is reported rather than upgraded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from vigie.errors import WarehouseError
from warehouse.connection import connect, migrations
from warehouse.store import Store


@contextmanager
def read_only_warehouse(path: Path, *, lock_wait_s: float = 10.0) -> Iterator[Store]:
    """The existing warehouse at `path`, opened read-only, as a `Store`.

    Raises:
        WarehouseError: the file cannot be opened, stays locked by a writer, or its schema
            lacks migrations (`vigie db migrate` applies them).
    """
    con = connect(path, lock_wait_s=lock_wait_s, read_only=True)
    try:
        try:
            applied = {
                row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()
            }
        except duckdb.Error as err:
            raise WarehouseError(f"{path} is not a Vigie warehouse (no schema_migrations)") from err
        pending = [f"{v:03d}_{name}" for v, name, _ in migrations() if v not in applied]
        if pending:
            raise WarehouseError(
                f"the warehouse {path} lacks {len(pending)} migration(s) ({pending[0]}...): "
                "run `vigie db migrate`, or preview with --sample"
            )
        yield Store(con)
    finally:
        con.close()


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as its email needs it: the stored window, figures, severity and reason."""

    alert_id: str
    topic: str
    level: str
    score: float
    reason: str
    opened_at: datetime
    window_start: datetime
    window_end: datetime
    mentions_in_window: int
    baseline: float
    severity: float | None
    contributions: dict[str, float]
    drill: bool


def latest_alert(store: Store) -> AlertRecord | None:
    """The most recently opened alert (a real one before any drill's), or None."""
    rows = store.con.execute(
        "SELECT alert_id, topic, level, score, reason, opened_at, window_start, window_end, "
        "mentions_in_window, baseline, severity, contributions, coalesce(drill, false) "
        "FROM alerts ORDER BY coalesce(drill, false), opened_at DESC, alert_id DESC LIMIT 1"
    ).fetchall()
    if not rows:
        return None
    row = list(rows[0])
    contributions = json.loads(row[11]) if row[11] else {}
    row[11] = {str(k): float(v) for k, v in contributions.items()}
    return AlertRecord(*row)
