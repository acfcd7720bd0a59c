"""Backup and restore of the warehouse file.

A backup is safe while the watch runs: it holds the warehouse (so no writer is half-way through a
transaction), checkpoints the write-ahead log into the file, copies the file to a temporary name
beside the destination, then renames it into place, so a destination is always whole.
A restore refuses to run while any process holds the warehouse, and checks the backup first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from vigie.errors import WarehouseError, one_line
from warehouse.connection import connect, open_warehouse


def backup_warehouse(path: Path, destination: Path, *, lock_wait_s: float = 60.0) -> int:
    """Copy a consistent snapshot of `path` to `destination`; return its size in bytes."""
    if not path.exists():
        raise WarehouseError(
            f"there is no warehouse at {path} to back up: check warehouse.path in the "
            "configuration (the first watch cycle creates it)"
        )
    if destination.resolve() == path.resolve():
        raise WarehouseError(
            "the backup destination is the warehouse itself: give another file to write"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with open_warehouse(path, lock_wait_s=lock_wait_s) as con:
        con.execute("CHECKPOINT")
        try:
            shutil.copyfile(path, partial)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise WarehouseError(
                f"cannot write the backup {destination}: {err.strerror}; give a destination "
                "in a folder with room that this user may write to"
            ) from err
    os.replace(partial, destination)
    return destination.stat().st_size


def restore_warehouse(backup: Path, path: Path) -> None:
    """Replace the warehouse with `backup` after checking the backup opens as a Vigie warehouse.

    Raises:
        WarehouseError: the backup is missing or not a warehouse, or the warehouse is in use.
    """
    if not backup.exists():
        raise WarehouseError(
            f"there is no backup at {backup}: give the path of a file `vigie db backup` wrote"
        )
    try:
        check = duckdb.connect(str(backup), read_only=True)
        try:
            check.execute("SELECT count(*) FROM schema_migrations").fetchall()
        finally:
            check.close()
    except duckdb.Error as err:
        raise WarehouseError(
            f"{backup} is not a Vigie warehouse ({one_line(err, 300)}): give a file "
            "`vigie db backup` wrote"
        ) from err
    if path.exists():
        con = connect(path, lock_wait_s=0)  # fails at once if a watch cycle holds it
        con.close()
    partial = path.with_name(path.name + ".restoring")
    shutil.copyfile(backup, partial)
    Path(f"{path}.wal").unlink(missing_ok=True)
    os.replace(partial, path)


def checkpoint_warehouse(path: Path, *, lock_wait_s: float = 60.0) -> tuple[int, int]:
    """Fold the write-ahead log into the file (DuckDB CHECKPOINT); return the bytes of the file
    and its log together, before and after."""

    def size() -> int:
        wal = path.with_name(path.name + ".wal")
        return sum(p.stat().st_size for p in (path, wal) if p.exists())

    with open_warehouse(path, lock_wait_s=lock_wait_s) as con:
        before = size()
        con.execute("CHECKPOINT")
        return before, size()
