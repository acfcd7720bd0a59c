"""The `vigie` command line: check, run, status, demo.

Expected errors (`VigieError`) print one line on stderr and exit non-zero, never a traceback.
Heavy imports (Prefect, Great Expectations) happen only in the commands that need them, so
`vigie check` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from vigie import disable_telemetry
from vigie.errors import ConfigError, VigieError
from vigie.settings import CONFIG_ENV, Settings, load_secrets, load_settings, resolve_config_path

EXIT_ERROR = 1
EXIT_CONFIG = 2


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(resolve_config_path(args.config))


def cmd_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    org = settings.organisation
    print(f"{settings.config_path}: valid")
    print(f"Organisation: {org.name} (emails in {org.language}, time zone {org.timezone})")
    print(f"Warehouse: {settings.warehouse_path}")
    print(f"Watch queries ({len(settings.watch)}):")
    for watch in settings.watch:
        print(f"  {watch.name}: {watch.query}")
    print(f"Sources ({len(settings.sources)}):")
    for source in settings.sources:
        print(
            f"  {source.name} [{source.kind}, {source.platform}, tier {source.tier}] {source.url}"
        )
    email = settings.email
    login = f"as {email.username}" if email.username else "without login"
    print(f"Email: {email.sender} via {email.host}:{email.port} ({email.security}, {login})")
    first = settings.first_level
    if first:
        names = ", ".join(f"{m.name} <{m.email}>" for m in first)
        print(f"Alerts go first to: {names}")
    else:
        print("Warning: the crisis cell has no members; alerts would reach nobody.")
    print(f"Watch cycle every {settings.schedule.watch_every_minutes} min")
    load_secrets(settings)  # a missing secret is reported after the summary, and fails the check
    return 0


def _run_cycle(config_path: Path) -> dict[str, object]:
    from flows.watch_cycle import watch_cycle
    from warehouse.connection import open_warehouse

    settings = load_settings(config_path)
    load_secrets(settings)
    # Open (and migrate) the warehouse before Prefect starts, so a broken or locked file is
    # reported in one line rather than as a failed flow run.
    with open_warehouse(settings.warehouse_path):
        pass
    return watch_cycle(str(config_path))


def cmd_run(args: argparse.Namespace) -> int:
    config_path = resolve_config_path(args.config)
    settings = load_settings(config_path)
    while True:
        summary = _run_cycle(config_path)
        if args.json:
            print(json.dumps(summary, ensure_ascii=False), flush=True)
        else:
            failed = summary["sources_failed"]
            print(
                f"cycle {summary['cycle_id']}: {summary['sources_ok']} sources ok, "
                f"{len(failed)} failed, {summary['new_mentions']} new mentions, "  # type: ignore[arg-type]
                f"{len(summary['alerts_opened'])} alerts opened, "  # type: ignore[arg-type]
                f"{summary['emails_sent']} emails sent ({summary['duration_s']:.1f} s)",
                flush=True,
            )
        if args.once:
            return 0
        time.sleep(settings.schedule.watch_every_minutes * 60)


def cmd_status(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5) as con:
        store = Store(con)
        last = store.last_cycle()
        health = store.source_health()
        alerts = store.open_alerts()
        unsent = store.unsent_count()
        counts = store.counts()
    if last is None:
        print("No watch cycle has run yet (vigie run --once).")
    else:
        cycle_id, started, finished, _ = last
        state = f"finished {finished:%Y-%m-%d %H:%M:%S %Z}" if finished else "did not finish"
        print(f"Last cycle: {cycle_id}, started {started:%Y-%m-%d %H:%M:%S %Z}, {state}")
    print(
        f"Mentions: {counts['mentions']}, stories: {counts['stories']}, "
        f"quarantined: {counts['quarantine']}"
    )
    print("Sources:")
    for name, status, _last_run, last_ok, failures, error in health:
        when = f"{last_ok:%Y-%m-%d %H:%M}" if last_ok else "never"
        line = f"  {name}: {status or 'not run yet'}, last success {when}"
        if failures:
            line += f", {failures} failure(s) in a row: {error}"
        print(line)
    print(f"Open alerts: {len(alerts)}")
    for alert_id, topic, level, status, opened_at, in_window, _ in alerts:
        print(
            f"  {alert_id} [{level}] {topic}: {status} since {opened_at:%Y-%m-%d %H:%M %Z}, "
            f"{in_window} mentions in window"
        )
    print(f"Emails waiting in the outbox: {unsent}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vigie.demo import run_demo

    return run_demo(Path(args.workdir))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigie",
        description="Vigie: early warning of press and social-media crises.",
        epilog="Examples:\n  vigie check --config vigie.toml\n  vigie run --once --json\n"
        "  vigie status\n  vigie demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        help=f"configuration file (default: ${CONFIG_ENV}, else vigie.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate the configuration and show what is watched")
    check.set_defaults(func=cmd_check)
    run = sub.add_parser("run", help="run watch cycles (one with --once)")
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument("--json", action="store_true", help="print each cycle's summary as JSON")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="last cycle, health of each source, open alerts")
    status.set_defaults(func=cmd_status)
    demo = sub.add_parser("demo", help="run the bundled scenario on local servers")
    demo.add_argument("--workdir", default="demo-output", help="folder for the demo's files")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    disable_telemetry()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"vigie: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except VigieError as err:
        print(f"vigie: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
