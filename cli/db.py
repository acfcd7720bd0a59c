"""`vigie db`: the DuckDB warehouse: migrate, info, check, export, backup, restore, prune."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from cli.common import parse_day, settings_of
from cli.examples import ExampleParser
from vigie.errors import ConfigError
from vigie.progress import ProgressBar


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from warehouse.connection import connect, migrate

    settings = settings_of(args)
    con = connect(settings.warehouse_path)
    try:
        applied = migrate(con)
    finally:
        con.close()
    if applied:
        print(f"{settings.warehouse_path}: applied {', '.join(applied)}")
    else:
        print(f"{settings.warehouse_path}: up to date")
    return 0


def cmd_db_info(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
    path = settings.warehouse_path
    with open_warehouse(path, lock_wait_s=5, verify=True) as con:
        info = Store(con).info()
    size = path.stat().st_size
    print(f"Warehouse: {path} ({size / 1e6:.1f} MB)")
    version, name, applied_at = info["migrations"][-1]
    print(
        f"Schema: version {version:03d} ({name}), {len(info['migrations'])} migrations applied, "
        f"last on {applied_at:%Y-%m-%d %H:%M %Z}"
    )
    for table, count in info["counts"].items():
        print(f"  {table:<13} {count:>10,} rows")
    print(f"  {'aggregates':<13} {info['buckets']:>10,} five-minute buckets")
    if info["oldest"]:
        print(
            f"Mentions published from {info['oldest']:%Y-%m-%d %H:%M} "
            f"to {info['newest']:%Y-%m-%d %H:%M} UTC"
        )
    print("(Counts come from the file's metadata: `vigie db check` reads it whole.)")
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    from warehouse.backup import check_warehouse

    settings = settings_of(args)
    result = check_warehouse(settings.warehouse_path, lock_wait_s=30)
    print(
        f"{result.path}: readable whole ({result.tables} tables, {result.rows:,} rows, "
        f"{result.size / 1e6:.1f} MB read in {result.seconds:.1f} s)"
    )
    return 0


def cmd_db_export(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
    if args.until <= args.since:
        raise ConfigError("--until must come after --since")
    output = Path(args.output or f"mentions-{args.since:%Y%m%d}-{args.until:%Y%m%d}.{args.format}")
    print(
        f"Exporting mentions published from {args.since:%Y-%m-%d %H:%M} to "
        f"{args.until:%Y-%m-%d %H:%M} UTC ...",
        flush=True,
    )
    with open_warehouse(settings.warehouse_path) as con, ProgressBar("exporting", "rows") as bar:
        count = Store(con).export_mentions(
            output, since=args.since, until=args.until, fmt=args.format, progress=bar
        )
    print(f"{count} mentions written to {output}")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from warehouse.backup import backup_warehouse

    settings = settings_of(args)
    destination = Path(
        args.destination
        or settings.warehouse_path.with_name(
            f"{settings.warehouse_path.stem}-{datetime.now(UTC):%Y%m%dT%H%M%S}.duckdb"
        )
    )
    size = backup_warehouse(settings.warehouse_path, destination)
    print(f"Backup written to {destination} ({size / 1e6:.1f} MB)")
    return 0


def cmd_db_restore(args: argparse.Namespace) -> int:
    from warehouse.backup import restore_warehouse

    settings = settings_of(args)
    restore_warehouse(Path(args.backup), settings.warehouse_path)
    print(f"{settings.warehouse_path} restored from {args.backup}")
    return 0


def cmd_db_prune(args: argparse.Namespace) -> int:
    from tasks.operations import prune_raw_text

    settings = settings_of(args)
    result = prune_raw_text(
        settings.warehouse_path, settings.retention.raw_text_days, datetime.now(UTC)
    )
    print(result.describe())
    return 0


def add_commands(sub: argparse._SubParsersAction[ExampleParser]) -> None:
    """The parsers of these commands."""
    db = sub.add_parser("db", help="the DuckDB warehouse: migrate, info, export, backup ...")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_db_migrate)
    db_sub.add_parser("info", help="schema version, row counts, time range").set_defaults(
        func=cmd_db_info
    )
    db_sub.add_parser(
        "check",
        help="read the whole file (every row of every table) to find damage; exit 1 if damaged",
        epilog="Read-only; safe while the watch runs (it waits for a writer to finish).",
    ).set_defaults(func=cmd_db_check)
    export = db_sub.add_parser("export", help="write mentions to Parquet or CSV")
    export.add_argument("--since", type=parse_day, required=True, help="first day (UTC), included")
    export.add_argument("--until", type=parse_day, required=True, help="last day (UTC), excluded")
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    export.add_argument("--output", help="file to write (default mentions-SINCE-UNTIL.FORMAT)")
    export.set_defaults(func=cmd_db_export)
    backup = db_sub.add_parser("backup", help="copy a consistent snapshot, safe while running")
    backup.add_argument("destination", nargs="?", help="file to write (default: dated copy)")
    backup.set_defaults(func=cmd_db_backup)
    restore = db_sub.add_parser("restore", help="replace the warehouse with a backup")
    restore.add_argument("backup", help="a file written by `vigie db backup`")
    restore.set_defaults(func=cmd_db_restore)
    db_sub.add_parser("prune", help="apply the retention policy now").set_defaults(
        func=cmd_db_prune
    )
