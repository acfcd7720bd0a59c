"""Open the DuckDB warehouse and bring its schema up to date.

DuckDB holds one writer lock per file across processes and fails at once when another process
holds it (STACK.md gotcha 11). `open_warehouse` waits for that lock with back-off for a bounded
time, so two flows in two processes that write at the same moment run one after the other instead
of failing; inside one process (threads, `serve`), a process-wide lock does the same, because
DuckDB lets two connections of one process write side by side. Connections are kept short (one
`with` block per step). Extensions are never downloaded.

A damaged file (truncated, overwritten, failing DuckDB's block checksums) shows itself when the
damaged part is read, at connect or in any later query: both become one `WarehouseDamaged` that
names the file and the backup to restore (`vigie db check` reads the whole file to find damage).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from vigie.errors import WarehouseDamaged, WarehouseError, one_line

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PROCESS_LOCK = threading.RLock()
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# DuckDB names the process holding the file: "Conflicting lock is held in ... (PID 1234)".
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
# What DuckDB says when the file itself is bad, as opposed to a lock, a full disk or a right.
_DAMAGE_MARKS = (
    "could not read enough bytes",
    "corrupt database file",
    "not a valid duckdb database",
    "checksum",
)
# A DuckDB file starts with three 4 KiB headers, then its blocks (`block_size` each).
_HEADER_BYTES = 3 * 4096
# The maintenance flow writes its daily backups here, beside the file (`vigie db backup` without
# a destination writes beside the file itself; both are offered for a restore).
BACKUP_FOLDER = "backups"
_OFFLINE: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def is_damage(err: BaseException) -> bool:
    """Whether a DuckDB error says the file itself is damaged."""
    text = str(err).lower()
    return isinstance(err, duckdb.Error) and any(mark in text for mark in _DAMAGE_MARKS)


def backup_folder(path: Path) -> Path:
    """Where backups of the warehouse `path` are written by default."""
    return path.parent / BACKUP_FOLDER


def backup_files(path: Path) -> list[Path]:
    """The dated backups of `path` in its backup folder (and beside it), oldest first."""
    pattern = f"{path.stem}-*.duckdb"
    found = [*backup_folder(path).glob(pattern), *path.parent.glob(pattern)]
    return sorted((p for p in found if p.is_file()), key=lambda p: (p.name, str(p)))


def restore_hint(path: Path) -> str:
    """What to do with a damaged warehouse: the restore command, with the newest backup."""
    backups = backup_files(path)
    if backups:
        return f"restore the last backup: vigie db restore {backups[-1]}"
    return "restore a backup: vigie db restore FILE (a file `vigie db backup` wrote)"


def damaged(path: Path, err: BaseException | str) -> WarehouseDamaged:
    """The one-line error of a damaged warehouse file."""
    reason = one_line(err, 200)
    return WarehouseDamaged(
        f"the warehouse {path} is damaged and cannot be read ({reason}): {restore_hint(path)}",
        reason,
    )


def verify_blocks(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Check that every block the tables use lies inside the file (a truncated file fails),
    from the file's metadata: about 0.3 s for 3 million rows, against seconds for a full
    read (`warehouse.backup.check_warehouse`), so commands that start work can afford it.

    Raises:
        WarehouseDamaged: a block lies past the end of the file, or the metadata cannot be read.
    """
    if str(path) == ":memory:":
        return
    try:
        block_size = int(
            con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
        )
        tables = [
            str(row[0])
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        ]
        last = -1
        for table in tables:
            found = con.execute(
                "SELECT max(block_id) FROM pragma_storage_info(?) WHERE persistent", [table]
            ).fetchall()[0][0]
            if found is not None:
                last = max(last, int(found))
    except duckdb.Error as err:
        if is_damage(err):
            raise damaged(path, err) from err
        raise
    needed = _HEADER_BYTES + (last + 1) * block_size
    size = path.stat().st_size
    if size < needed:
        raise damaged(
            path, f"the file has {size} bytes, its tables use blocks up to byte {needed}: cut short"
        )


def migrations() -> list[tuple[int, str, Path]]:
    """The versioned migrations, in order: (version, name, file)."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path))
    return found


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this file has not seen yet, each in its own transaction."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[str] = []
    for version, name, path in migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(path.read_text(encoding="utf-8"))
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except duckdb.Error as err:
            con.execute("ROLLBACK")
            raise WarehouseError(
                f"migration {path.name} failed, nothing of it was applied: {one_line(err, 300)}; "
                "restore the last backup (vigie db restore FILE) if the warehouse was damaged"
            ) from err
        applied.append(f"{version:03d}_{name}")
    return applied


def connect(
    path: Path, *, lock_wait_s: float = 60.0, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the warehouse file, waiting up to `lock_wait_s` for its lock.

    `read_only` opens an existing file without ever writing to it (nor creating its folder).

    Raises:
        WarehouseError: the folder cannot be created, the lock is not released in time, or the
            file is not a DuckDB database.
    """
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WarehouseError(
            f"cannot create the folder of {path}: {err.strerror}; check warehouse.path in the "
            "configuration and that this user may write there"
        ) from err
    if not read_only and str(path) != ":memory:" and not path.exists():
        _create_whole(path)
    deadline = time.monotonic() + lock_wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=_OFFLINE)
            con.execute("SET TimeZone = 'UTC'")
            # DuckDB would draw its own bar on stdout for a long statement, even in a log
            # file; commands show theirs on stderr (vigie.progress).
            con.execute("SET enable_progress_bar_print = false")
            return con
        except duckdb.IOException as err:
            if is_damage(err):
                raise damaged(path, err) from err
            if "lock" not in str(err).lower():
                raise WarehouseError(_cannot_open(path, err)) from err
            if time.monotonic() >= deadline:
                holder = _LOCK_HOLDER.search(str(err))
                pid = f"PID {holder.group(1)}, " if holder else ""
                raise WarehouseError(
                    f"the warehouse {path} is locked by another process ({pid}waited "
                    f"{lock_wait_s:.0f} s): wait for the running cycle or command to finish, "
                    "or stop that process (vigie serve, vigie run, a DuckDB shell)"
                ) from err
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        except duckdb.Error as err:
            if is_damage(err):
                raise damaged(path, err) from err
            raise WarehouseError(_cannot_open(path, err)) from err


def _create_whole(path: Path) -> None:
    """Create a new, empty warehouse file beside `path`, then link it into place: two processes
    starting on a new warehouse at once (two first cycles) never see a file whose header DuckDB
    is still writing, which it reports as "not a valid DuckDB database file"."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        duckdb.connect(str(partial), config=_OFFLINE).close()
        os.link(partial, path)
    except FileExistsError:
        pass  # another process created it first: open that one
    except (OSError, duckdb.Error):
        pass  # no hard links here (or no room): DuckDB creates the file itself, as before
    finally:
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _cannot_open(path: Path, err: BaseException) -> str:
    return (
        f"cannot open the warehouse {path}: {one_line(err, 300)}; check that warehouse.path "
        "names a Vigie DuckDB file (or a new file), or restore a backup (vigie db restore FILE)"
    )


@contextmanager
def open_warehouse(
    path: Path, *, lock_wait_s: float = 60.0, verify: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated connection, alone in this process and in any other, until the block ends.

    `verify` also checks that the file is not cut short (`verify_blocks`): for the commands
    that start work (a cycle, `vigie status`, `vigie watchdog`), so that a damaged file is one
    line before anything starts.

    Raises:
        WarehouseError: as `connect`, or when this process's other user does not finish in time.
        WarehouseDamaged: the file is damaged, found at connect or by any query of the block.
    """
    if not _PROCESS_LOCK.acquire(timeout=lock_wait_s):
        raise WarehouseError(
            f"the warehouse {path} is busy in this process (waited {lock_wait_s:.0f} s): "
            "try again when its current write has finished"
        )
    try:
        con = connect(path, lock_wait_s=lock_wait_s)
        try:
            migrate(con)
            if verify:
                verify_blocks(con, path)
            yield con
        except duckdb.Error as err:
            if is_damage(err):
                raise damaged(path, err) from err
            raise
        except WarehouseError as err:  # a migration that failed on a damaged file
            cause = err.__cause__
            if cause is not None and is_damage(cause) and not isinstance(err, WarehouseDamaged):
                raise damaged(path, cause) from cause
            raise
        finally:
            con.close()
    finally:
        _PROCESS_LOCK.release()
