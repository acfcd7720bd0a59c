"""Backup and restore of the warehouse file.

A backup is safe while the watch runs: it holds the warehouse (so no writer is half-way through a
transaction), checkpoints the write-ahead log into the file, copies the file to a temporary name
beside the destination, then renames it into place, so a destination is always whole.
A restore refuses to run while any process holds the warehouse, and checks the backup first; a
damaged warehouse it replaces is kept beside it (`<file>.damaged`), nothing is lost.
`check_warehouse` reads every row of every table read-only, so damage that only a query of the
damaged part would meet is found (`vigie db check`); `rotate_backups` keeps the newest backups.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from vigie.errors import WarehouseDamaged, WarehouseError, one_line
from warehouse.connection import (
    backup_files,
    backup_folder,
    connect,
    damaged,
    is_damage,
    open_warehouse,
    verify_blocks,
)


@dataclass(frozen=True, slots=True)
class WarehouseCheck:
    """What `check_warehouse` read: tables, rows, bytes of the file, seconds."""

    path: Path
    tables: int
    rows: int
    size: int
    seconds: float


def check_warehouse(path: Path, *, lock_wait_s: float = 60.0) -> WarehouseCheck:
    """Open `path` read-only and read all of it: its size, every column of every row of every
    table (a hash of each row), so that each block is read and its checksum verified.

    Raises:
        WarehouseDamaged: a part of the file cannot be read.
        WarehouseError: there is no file, or another process holds it past `lock_wait_s`.
    """
    if not path.exists():
        raise WarehouseError(
            f"there is no warehouse at {path}: check warehouse.path in the configuration "
            "(the first watch cycle creates it)"
        )
    started = time.monotonic()
    con = connect(path, lock_wait_s=lock_wait_s, read_only=True)
    try:
        con.execute("PRAGMA database_size").fetchall()
        tables = [
            str(row[0])
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() "
                "WHERE database_name = current_database() ORDER BY table_name"
            ).fetchall()
        ]
        rows = 0
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            count, _ = con.execute(
                f"SELECT count(*), bit_xor(hash(_row)) FROM {quoted} AS _row"
            ).fetchall()[0]
            rows += int(count)
        con.execute("SELECT count(*) FROM schema_migrations").fetchall()
    except duckdb.Error as err:
        if is_damage(err):
            raise damaged(path, err) from err
        raise WarehouseError(
            f"the warehouse {path} could not be read whole: {one_line(err, 300)}"
        ) from err
    finally:
        con.close()
    return WarehouseCheck(path, len(tables), rows, path.stat().st_size, time.monotonic() - started)


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
    damaged_file = False
    if path.exists():
        try:
            con = connect(path, lock_wait_s=0)  # fails at once if a watch cycle holds it
            try:
                verify_blocks(con, path)
            finally:
                con.close()
        except WarehouseDamaged:
            damaged_file = True  # what a restore is for
    partial = path.with_name(path.name + ".restoring")
    shutil.copyfile(backup, partial)
    if damaged_file:
        os.replace(path, path.with_name(path.name + ".damaged"))
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


def rotate_backups(path: Path, *, keep: int, now: datetime) -> tuple[Path, list[Path]]:
    """Write a dated, checked backup of `path` in its backup folder and delete the oldest
    beyond `keep`; return the new backup and the deleted ones. A backup that does not read
    whole is deleted and raises, so that it never pushes a good one out.

    Raises:
        WarehouseDamaged: the warehouse (hence its copy) cannot be read whole.
    """
    if keep < 1:
        raise WarehouseError("keep at least one backup")
    destination = backup_folder(path) / f"{path.stem}-{now:%Y%m%dT%H%M%S}.duckdb"
    backup_warehouse(path, destination)
    try:
        check_warehouse(destination, lock_wait_s=0)
    except WarehouseError as err:
        destination.unlink(missing_ok=True)
        if isinstance(err, WarehouseDamaged):
            raise damaged(path, err.reason) from err  # the copy is as the warehouse is
        raise
    kept = [p for p in backup_files(path) if p.parent == backup_folder(path)]
    removed = kept[: max(len(kept) - keep, 0)]
    for old in removed:
        old.unlink(missing_ok=True)
    return destination, removed
