"""The crisis cell's commands: take charge of an alert, escalate, digests, the outbox, the cell,
readiness reminders, drills, incidents."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from cli.common import EXIT_ERROR, parse_day, settings_of, unsent_state
from cli.examples import ExampleParser
from cli.words import count, say
from vigie.errors import ConfigError, VigieError
from vigie.settings import Settings, load_secrets, load_settings, resolve_config_path


def _print_cell(settings: Settings) -> None:
    """The cell by escalation level, where to reach it, its charter and the teams reminded."""
    from cli.cell import cell_lines

    print("\n".join(cell_lines(settings)))


def cmd_cell_show(args: argparse.Namespace) -> int:
    _print_cell(load_settings(resolve_config_path(args.config), lenient_cell=True))
    return 0


def cmd_cell_check(args: argparse.Namespace) -> int:
    from cli.cell import check_cell, report_lines

    settings = load_settings(resolve_config_path(args.config), lenient_cell=True)
    report = check_cell(settings)
    _print_cell(settings)
    print()
    print("\n".join(report_lines(report, settings.organisation.language)))
    return 0 if report.ready else EXIT_ERROR


def cmd_readiness(args: argparse.Namespace) -> int:
    from tasks.notify.readiness import send_readiness

    settings = settings_of(args)
    secrets = load_secrets(settings)
    language = settings.organisation.language
    if not settings.teams:
        print(say(language, "readiness.no_team"))
        return 0
    now = args.now or datetime.now(UTC)
    outcomes = send_readiness(
        settings.warehouse_path, settings, secrets, now=now, team=args.team, force=args.force
    )
    for outcome in outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"{outcome.team}: {say(language, f'readiness.{outcome.outcome}')}{detail}")
    return EXIT_ERROR if any(o.outcome == "failed" for o in outcomes) else 0


def cmd_ack(args: argparse.Namespace) -> int:
    from tasks.publish.events import acknowledged_event, emit_from_command
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
    by = " ".join(args.by.split())[:120]
    if not by:
        raise ConfigError("--by needs the name of the person who takes charge")
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        before = store.acknowledge_alert(args.alert_id, by, datetime.now(UTC))
        event = acknowledged_event(store, args.alert_id, by) if before == "open" else None
    language = settings.organisation.language
    if before == "open":
        print(say(language, "ack.done", alert_id=args.alert_id, by=by))
    else:
        status = (
            say(language, f"status.{before}") if before in ("acknowledged", "resolved") else before
        )
        print(say(language, "ack.already", alert_id=args.alert_id, status=status))
    # The Prefect event, when a Prefect server is configured (PREFECT_API_URL) and answers.
    note = emit_from_command([event] if event else [])
    if note:
        print(note, file=sys.stderr)
    # The acknowledge run the alert's email links to stops waiting: it records the same name.
    if before in ("open", "acknowledged"):
        from tasks.publish.runs import resume_acknowledge_runs

        resumed = resume_acknowledge_runs(args.alert_id, by)
        if resumed in ("closed", "left"):
            print(say(language, f"ack.run_{resumed}", alert_id=args.alert_id), file=sys.stderr)
        elif resumed:
            print(say(language, "ack.run_error", error=resumed), file=sys.stderr)
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from tasks.load import send_pending
    from tasks.operations import queue_digest

    settings = settings_of(args)
    # The password is needed only to send; --no-send works without it.
    secrets = None if args.no_send else load_secrets(settings)
    now = datetime.now(UTC)
    if args.end and args.end > now:
        raise ConfigError(
            "--end is in the future: a digest covers a period that is over; give a past --end, "
            "or none for the last whole hour"
        )
    queued = queue_digest(
        settings.warehouse_path, settings, period=args.period, end=args.end, now=now
    )
    digest, message, already = queued.digest, queued.message, queued.already_queued
    mentions = ", ".join(f"{t.topic} {t.mentions} (before {t.previous})" for t in digest.topics)
    print(
        f"Digest {digest.period} from {digest.start:%Y-%m-%d %H:%M} to "
        f"{digest.end:%Y-%m-%d %H:%M} UTC: mentions {mentions}; {len(digest.stories)} top "
        f"stories, {len(digest.failed_sources)} failed sources, {len(digest.alerts)} alerts"
    )
    state = "already in the outbox, not queued again" if already else "queued"
    print(
        f"{message.message_id}: {state}: {message.subject} "
        f"(to {len(message.recipients)} recipients, {len(message.images)} charts)"
    )
    if not message.recipients:
        print(
            "Warning: the crisis cell has no members; the digest reaches nobody: add "
            "[[cell.members]] (`vigie cell check` says what the cell needs)."
        )
    if secrets is None:
        print("Not sent (--no-send); the next watch cycle or `vigie digest` sends the outbox.")
        return 0
    report = send_pending(settings.warehouse_path, settings, secrets)
    print(f"Outbox: {len(report.sent)} sent, {len(report.failed)} failed")
    for message_id, reason in report.failed.items():
        print(f"  {message_id}: {reason}")
    return EXIT_ERROR if report.failed else 0


def cmd_escalate(args: argparse.Namespace) -> int:
    from tasks.operations import escalate_and_send

    settings = settings_of(args)
    secrets = load_secrets(settings)
    paged, report = escalate_and_send(
        settings.warehouse_path, settings, secrets, now=datetime.now(UTC)
    )
    for line in paged or ["no alert waits for escalation"]:
        print(line)
    print(f"emails sent {len(report.sent)}, failed {len(report.failed)}, held {len(report.held)}")
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from cli.channel_lines import channel_outbox_lines
    from tasks.notify.delivery import MAX_ATTEMPTS
    from warehouse.connection import open_warehouse

    settings = settings_of(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5) as con:
        rows = con.execute(
            "SELECT message_id, kind, subject, attempts, not_before, held_reason, uncertain_at, "
            "last_error, critical, sending_at, coalesce(uncertain_sendings, 0) FROM outbox "
            "WHERE sent_at IS NULL ORDER BY created_at, message_id"
        ).fetchall()
        channel_lines = channel_outbox_lines(con)
    if not rows:
        print("The outbox is empty: every email was sent.")
    for message_id, kind, subject, attempts, not_before, held, uncertain, error, *more in rows:
        critical, sending_at, uncertain_sendings = more
        state = unsent_state(
            attempts=attempts,
            max_attempts=MAX_ATTEMPTS,
            not_before=not_before,
            held=held,
            uncertain=uncertain,
            error=error,
            critical=critical,
            sending_at=sending_at,
            uncertain_sendings=uncertain_sendings,
        )
        print(f"{message_id} [{kind}] {subject[:80]}: {state}")
    for line in channel_lines:
        print(line)
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    from warehouse.channel_outbox import ChannelOutbox
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5) as con:
        again = Store(con).resend(args.message_id)
        again |= ChannelOutbox(con).resend(args.message_id) > 0  # its chat messages too
    if not again:
        raise VigieError(
            f"{args.message_id}: no unsent message with this id in the outbox "
            "(`vigie outbox list` shows them)"
        )
    print(f"{args.message_id} will be sent by the next cycle")
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from flows.drill import drill
    from tasks.notify.drill import check_drill_topic, drill_id_for, format_duration
    from vigie.serve import check_api_answers
    from warehouse.connection import open_warehouse

    config_path = resolve_config_path(args.config)
    settings = load_settings(config_path)
    load_secrets(settings)
    if not 1 <= args.ack_wait <= 24 * 60:
        raise ConfigError("--ack-wait must be between 1 and 1440 minutes")
    if not args.name.strip() or len(args.name) > 80:
        raise ConfigError("the drill's name must have 1 to 80 characters")
    # Checked before Prefect starts, so that it is one line rather than a failed run.
    check_drill_topic(settings, drill_id_for(args.name))
    check_api_answers()
    with open_warehouse(settings.warehouse_path):
        pass
    language = settings.organisation.language
    print(
        say(language, "drill.start", drill_id=drill_id_for(args.name), minutes=args.ack_wait),
        file=sys.stderr if args.json else sys.stdout,
        flush=True,
    )
    result = drill(args.name, ack_wait_minutes=args.ack_wait, config_path=str(config_path))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    done = say(
        language,
        "drill.done",
        drill_id=result["drill_id"],
        status=result["status"],
        alert_id=result["alert_id"] or "-",
        detect=format_duration(result["time_to_detect_s"]),
        ack=format_duration(result["time_to_ack_s"]),
    )
    print(done + (f" ({result['acknowledged_by']})" if result["acknowledged_by"] else ""))
    return 0


def cmd_incident_list(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import IncidentStore

    settings = settings_of(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        incidents = IncidentStore(con).incidents()
    language = settings.organisation.language
    if not incidents:
        print(say(language, "incident.none"))
    for incident in incidents:
        end = incident.ended_at or incident.ends_at
        stop = (
            say(language, "incident.stop_asked", by=incident.stop_requested_by)
            if incident.stop_requested_at
            else ""
        )
        print(
            say(
                language,
                "incident.line",
                incident_id=incident.incident_id,
                name=incident.name,
                status=say(language, f"incident.{incident.status}")
                if incident.status in ("running", "ended", "stopped", "crashed")
                else incident.status,
                stop=stop,
                start=f"{incident.started_at:%Y-%m-%d %H:%M %Z}",
                end=f"{end:%Y-%m-%d %H:%M %Z}",
                sitreps=count(language, "incident.sitreps", incident.sitreps),
            )
        )
    return 0


def cmd_incident_stop(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import IncidentStore

    settings = settings_of(args)
    by = " ".join(args.by.split())[:120] or "vigie incident stop"
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        incident = IncidentStore(con).request_incident_stop(args.name, by, datetime.now(UTC))
    if incident is None:
        raise VigieError(f"no incident named {args.name!r} is running (vigie incident list)")
    print(
        say(
            settings.organisation.language,
            "incident.stopping",
            incident_id=incident.incident_id,
            by=by,
        )
    )
    return 0


def add_commands(sub: argparse._SubParsersAction[ExampleParser]) -> None:
    """The parsers of these commands."""
    sub.add_parser(
        "escalate",
        help="pass unacknowledged alerts to the next level of the cell, then send the outbox",
        epilog="Run it from cron every few minutes where no Prefect deployment does.",
    ).set_defaults(func=cmd_escalate)

    digest = sub.add_parser(
        "digest", help="build the cell's digest of the period, queue it and send the outbox"
    )
    digest.add_argument("--period", choices=["daily", "weekly"], required=True)
    digest.add_argument(
        "--end",
        type=parse_day,
        help="end of the period (ISO, UTC unless it says otherwise; default: the last whole "
        "hour in the organisation's time zone)",
    )
    digest.add_argument(
        "--no-send", action="store_true", help="queue the digest but do not send the outbox"
    )
    digest.set_defaults(func=cmd_digest)

    outbox = sub.add_parser("outbox", help="emails not sent yet: held, retrying, uncertain")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    outbox_sub.add_parser("list", help="every unsent email and why").set_defaults(
        func=cmd_outbox_list
    )
    resend = outbox_sub.add_parser(
        "resend",
        help="send an uncertain or given-up email again (after checking it did not arrive)",
    )
    resend.add_argument("message_id")
    resend.set_defaults(func=cmd_outbox_resend)

    ack = sub.add_parser("ack", help="acknowledge an alert: someone of the cell takes charge of it")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who takes charge")
    ack.set_defaults(func=cmd_ack)

    cell = sub.add_parser("cell", help="the crisis cell: check that it is ready, show it")
    cell_sub = cell.add_subparsers(dest="cell_command", required=True)
    cell_sub.add_parser(
        "check",
        help="say what the cell lacks (exit 1 when it is not ready)",
        epilog="Missing: no lead, spokesperson or legal counsel, a key role without backup, an "
        "invalid address, an escalation level with nobody. Warnings do not fail the check.",
    ).set_defaults(func=cmd_cell_check)
    cell_sub.add_parser("show", help="the cell by level, its charter, the teams").set_defaults(
        func=cmd_cell_show
    )

    readiness = sub.add_parser(
        "readiness",
        help="send the readiness reminders that are due (who is in the cell, what to do)",
        epilog="Each team gets one reminder per occurrence of its cron (teams.cron, else "
        "schedule.readiness_cron); a second run in the same period sends nothing.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    readiness.add_argument("--team", help="only this team (its name in the configuration)")
    readiness.add_argument(
        "--force", action="store_true", help="remind now even if this period's reminder went out"
    )
    readiness.add_argument(
        "--now", type=parse_day, help="the moment to act as (ISO, UTC by default)"
    )
    readiness.set_defaults(func=cmd_readiness)

    drill = sub.add_parser(
        "drill",
        help="rehearse: a labelled synthetic crisis through the real watch, to the cell",
        epilog="One name per drill; the same name again reports that drill and sends nothing "
        "twice.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drill.add_argument("name", help="the drill's name")
    drill.add_argument(
        "--ack-wait", type=int, default=30, help="minutes to wait for the acknowledgement (30)"
    )
    drill.add_argument("--json", action="store_true", help="print the result as JSON")
    drill.set_defaults(func=cmd_drill)

    incident = sub.add_parser("incident", help="incident mode: list incidents, stop one")
    incident_sub = incident.add_subparsers(dest="incident_command", required=True)
    incident_sub.add_parser("list", help="every incident, newest first").set_defaults(
        func=cmd_incident_list
    )
    stop = incident_sub.add_parser(
        "stop", help="stop a running incident: it ends after its cycle and sends its report"
    )
    stop.add_argument("name", help="the incident's name (its run is 'incident <name>')")
    stop.add_argument("--by", default=os.environ.get("USER", ""), help="who asks (your name)")
    stop.set_defaults(func=cmd_incident_stop)
