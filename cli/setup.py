"""Setting up: `vigie init` writes a configuration, `vigie watchdog` watches the watch from cron."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cli.examples import ExampleParser
from vigie.errors import VigieError, WarehouseDamaged, one_line
from vigie.settings import Settings, load_secrets

if TYPE_CHECKING:
    from tasks.notify.delivery import DeliveryReport
from cli.common import EXIT_ERROR, set_up_watch_automation, settings_of


def cmd_init(args: argparse.Namespace) -> int:
    import shlex

    from vigie.init import ask_spec, refuse_existing, render_config, write_new_config

    output = Path(args.output)
    refuse_existing(output, force=args.force)  # before any question
    # Never wait for an answer that cannot come: without a terminal, options or defaults only.
    interactive = not args.non_interactive and sys.stdin.isatty()
    spec = ask_spec(
        name=args.name,
        aliases=args.aliases,
        people=args.people,
        languages=args.languages,
        region=args.region,
        timezone=args.timezone,
        members=args.members,
        ask=input if interactive else None,
        say=lambda line: print(line, file=sys.stderr),
    )
    settings = write_new_config(output, render_config(spec), force=args.force)
    config = "" if output == Path("vigie.toml") else f"--config {shlex.quote(str(output))} "
    print(
        f"{output}: written / écrit ({len(settings.watch)} watch queries / requêtes, "
        f"{len(settings.sources)} sources)"
    )
    print('Fill in the lines marked "À REMPLIR / TO FILL IN", then / Remplissez-les, puis :')
    for command, what in (
        ("check", "validate / valider"),
        ("sources test", "fetch every source once / interroger chaque source"),
        ("cell check", "what the crisis cell lacks / ce qui manque à la cellule"),
        ("run --once", "one watch cycle / un cycle de veille"),
    ):
        print(f"  vigie {config}{command:<14} {what}")
    return 0


def cmd_watchdog(args: argparse.Namespace) -> int:
    from cli.channel_alarm import clear_channel_alarm
    from cli.watchdog import check_watch, clear_unreadable, duration_text, stop_notice_id
    from tasks.load import send_pending
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
    if args.automation:
        from vigie.serve import check_api_answers, require_api_url

        require_api_url()
        check_api_answers()
        set_up_watch_automation(settings)
        return 0
    path = settings.warehouse_path
    if not path.exists():
        raise VigieError(
            f"WATCH NOT STARTED: no warehouse at {path}, no cycle has ever run; "
            "start it with vigie run --once, then vigie serve"
        )
    now = datetime.now(UTC)
    try:
        with open_warehouse(path, lock_wait_s=30, verify=True) as con:
            state, queued = check_watch(Store(con), settings, now=now)
    except WarehouseDamaged as err:
        return _alarm_unreadable(settings, path, err, now)
    clear_channel_alarm(path)
    if clear_unreadable(path) is not None:
        print(f"The warehouse {path} reads again: the unreadable-warehouse incident is over.")
    limit = duration_text(state.limit)
    if state.last_watched_at is not None and state.silent_for is not None:
        last = (
            f"last cycle with a source answering: {state.last_cycle}, finished "
            f"{state.last_watched_at:%Y-%m-%d %H:%M} UTC, {duration_text(state.silent_for)} ago"
        )
    else:
        last = "no cycle has completed with a source answering"
    if not state.stopped:
        print(f"Watch running: {last} (limit {limit}).")
        if queued:
            _deliver_watchdog(send_pending(path, settings, load_secrets(settings), now=now))
        return 0
    print(f"WATCH STOPPED: {last} (limit {limit}).")
    if not settings.operators:
        print("Nobody to tell: the cell has no members ([[cell.members]] in the configuration).")
        return EXIT_ERROR
    _deliver_watchdog(send_pending(path, settings, load_secrets(settings), now=now))
    notice = stop_notice_id(state)
    with open_warehouse(path, lock_wait_s=30) as con:
        delivery = Store(con).delivery_state(notice)
    if delivery is not None and delivery[0] is not None:
        print(f"The operators were told at {delivery[0]:%Y-%m-%d %H:%M} UTC ({notice}).")
    elif delivery is not None:
        _, attempts, error, not_before = delivery
        retry = f" after {not_before:%H:%M} UTC" if not_before is not None else ""
        print(
            f"The operators are not told yet: {notice} failed {attempts} time(s) "
            f"({error or 'not tried'}); the next run{retry} tries again."
        )
    return EXIT_ERROR


def _alarm_unreadable(settings: Settings, path: Path, err: WarehouseDamaged, now: datetime) -> int:
    """The warehouse cannot be read: tell the operators straight through SMTP, once per
    incident (cli/watchdog.py), and say so in one line each."""
    from cli.channel_alarm import tell_channels_unreadable
    from cli.watchdog import send_directly, tell_unreadable, unreadable_notice
    from warehouse.connection import restore_hint

    print(f"WATCH STOPPED: {one_line(err)}")
    if not settings.operators:
        print("Nobody to tell: the cell has no members ([[cell.members]] in the configuration).")
        return EXIT_ERROR
    outcome, alarm = tell_unreadable(
        settings,
        path,
        err.reason,
        restore_hint(path),
        now=now,
        send=send_directly(settings, load_secrets(settings)),
    )
    notice = unreadable_notice(settings, alarm, path, err.reason, restore_hint(path))
    for line in tell_channels_unreadable(settings, path, notice):
        print(line)
    if outcome == "sent":
        print(f"Sent: {alarm.message_id} (to {', '.join(m.email for m in settings.operators)})")
    elif outcome == "already_sent":
        assert alarm.sent_at is not None
        print(
            f"The operators were told at {alarm.sent_at:%Y-%m-%d %H:%M} UTC ({alarm.message_id})."
        )
    else:
        print(
            f"The operators are not told yet: {alarm.message_id} failed {alarm.attempts} "
            f"time(s) ({alarm.last_error}); the next run tries again."
        )
    return EXIT_ERROR


def _deliver_watchdog(report: DeliveryReport) -> None:
    for message_id in report.sent:
        print(f"Sent: {message_id}")
    for message_id, reason in report.failed.items():
        print(f"Not sent now, kept in the outbox: {message_id} ({reason})")


def add_commands(sub: argparse._SubParsersAction[ExampleParser]) -> None:
    """The parsers of these commands."""
    init = sub.add_parser(
        "init",
        help="write a first, commented vigie.toml for your organisation (asks, or takes options)",
        description="Write a commented vigie.toml: watch queries built from the names, news\n"
        "search feeds per language for the region, Reddit, Mastodon, Bluesky and Hacker News\n"
        "searches, a place for your own feeds, and a crisis cell of placeholders to fill in.\n"
        "An existing file is only replaced with --force.",
        epilog="Asks what it is not given when run in a terminal (in French and English).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    init.add_argument(
        "--name", metavar="NAME", help="the organisation's name / le nom de l'organisation"
    )
    init.add_argument(
        "--aliases",
        action="append",
        metavar="NAMES",
        help="other names and products, comma-separated or repeated / autres noms et produits",
    )
    init.add_argument(
        "--people",
        action="append",
        metavar="NAMES",
        help="people to watch, comma-separated or repeated / personnes à surveiller",
    )
    init.add_argument(
        "--languages", metavar="fr,en", help="fr, en or fr,en (default: the region's)"
    )
    init.add_argument(
        "--region", metavar="CC", help="two-letter country code for news search (default CA)"
    )
    init.add_argument(
        "--timezone",
        metavar="ZONE",
        help="IANA time zone such as Europe/Paris (default: the region's, else UTC)",
    )
    init.add_argument(
        "--member",
        dest="members",
        action="append",
        metavar="ROLE:NAME:EMAIL[:PHONE]",
        help="a member of the cell (ROLE: lead, spokesperson, legal or operator), repeated; "
        "given, members are not asked / un membre de la cellule",
    )
    init.add_argument(
        "--output", metavar="FILE", default="vigie.toml", help="file to write (default vigie.toml)"
    )
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.add_argument(
        "--non-interactive",
        "--yes",
        dest="non_interactive",
        action="store_true",
        help="ask nothing: take the defaults (--name is then required)",
    )
    init.set_defaults(func=cmd_init)

    watchdog = sub.add_parser(
        "watchdog",
        help="dead man's switch for cron: tell the operators when no cycle has completed",
        description=(
            "Check that a watch cycle completed, with at least one source answering, within "
            "health.watchdog_minutes (default: 3 scheduled cycles, 30 min at least). If not, "
            "email the operators once per stop, and again when the watch is back. Meant for the "
            "system's cron, every few minutes: it needs neither Prefect nor its server. "
            "A warehouse that cannot be read is told the same way, straight through SMTP, "
            "once per incident. "
            "Exit 0: the watch runs; 1: it has stopped (or the warehouse is missing or "
            "damaged)."
        ),
    )
    watchdog.add_argument(
        "--automation",
        action="store_true",
        help="instead: create or update the Prefect automation that does the same from the "
        "Prefect server of PREFECT_API_URL (`vigie serve` does it at start; run this after "
        "`prefect deploy`), then exit",
    )
    watchdog.set_defaults(func=cmd_watchdog)
