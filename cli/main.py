"""The `vigie` command line: check, run, status, demo.

Expected errors (`VigieError`) print one line on stderr and exit non-zero, never a traceback.
Heavy imports (Prefect, Great Expectations) happen only in the commands that need them, so
`vigie check` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from cli.examples import ExampleParser
from vigie import disable_telemetry
from vigie.errors import (
    ConfigError,
    PrefectUnreachable,
    VigieError,
    WarehouseDamaged,
    one_line,
)
from vigie.progress import ProgressBar, reporting
from vigie.settings import (
    CONFIG_ENV,
    Settings,
    load_secrets,
    load_settings,
    resolve_config_path,
    source_token,
)

if TYPE_CHECKING:
    from tasks.notify.delivery import DeliveryReport

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


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
        languages = f" (languages: {', '.join(watch.languages)})" if watch.languages else ""
        print(f"  {watch.name}: {watch.query}{languages}")
    print(f"Sources ({len(settings.sources)}):")
    for source in settings.sources:
        print(
            f"  {source.name} [{source.kind}, {source.platform}, tier {source.tier}] {source.url}"
        )
        if source.hashtag:
            print(f"    tag: #{source.hashtag}")
        if source.query:
            print(f"    searches: {source.query}")
        if source.token_env:
            print(f"    token: from ${source.token_env}")
    email = settings.email
    login = f"as {email.username}" if email.username else "without login"
    print(f"Email: {email.sender} via {email.host}:{email.port} ({email.security}, {login})")
    first = settings.first_level
    if first:
        names = ", ".join(f"{m.name} <{m.email}>" for m in first)
        print(f"Alerts go first to: {names}")
    else:
        print(
            "Warning: the crisis cell has no members; alerts would reach nobody: add "
            "[[cell.members]] (`vigie cell check` says what the cell needs)."
        )
    if first and not settings.source_operators:
        print(
            'Warning: no operator in the cell (role = "operator"): notices about the sources '
            f"have no recipient in the cell and go only to {settings.email.sender} (email.sender)."
        )
    print(f"Watch cycle every {settings.schedule.watch_every_minutes} min")
    _warn_placeholders(settings)
    _warn_schedule_drift(settings, None)
    _warn_tokens(settings)
    load_secrets(settings)  # a missing secret is reported after the summary, and fails the check
    return 0


def _warn_tokens(settings: Settings) -> None:
    """A token that is not here: the source would fail where the environment is this one (the
    watch may run elsewhere, with its own environment, so it is a warning)."""
    for source in settings.sources:
        try:
            source_token(source)
        except ConfigError as err:
            print(f"Warning: source {source.name!r}: {err}; it fails in this environment")


def _warn_placeholders(settings: Settings, file: TextIO = sys.stdout) -> None:
    """One line naming what `vigie init` left to fill in."""
    from vigie.init import PLACEHOLDER_MARK, placeholders

    keys = placeholders(settings)
    if keys:
        print(f"Warning: still to fill in ({PLACEHOLDER_MARK}): {', '.join(keys)}", file=file)


def _warn_schedule_drift(settings: Settings, prefect_yaml: Path | None) -> None:
    """One line when prefect.yaml's schedules disagree with [schedule] (or cannot be read)."""
    from vigie.deployments import find_prefect_yaml, mismatch_warning, read_deployments

    path = prefect_yaml or find_prefect_yaml(settings.config_path)
    if path is None:
        return
    try:
        warning = mismatch_warning(settings, read_deployments(path), path)
    except ConfigError as err:
        warning = f"Warning: {err}"
    if warning:
        print(warning)


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

    settings = _settings(args)
    secrets = load_secrets(settings)
    if not settings.teams:
        print("No team to remind: add [[teams]] to the configuration.")
        return 0
    now = args.now or datetime.now(UTC)
    outcomes = send_readiness(
        settings.warehouse_path, settings, secrets, now=now, team=args.team, force=args.force
    )
    words = {
        "sent": "sent",
        "failed": "FAILED",
        "queued": "queued",
        "already_sent": "already sent this period",
        "already_queued": "already queued this period",
    }
    for outcome in outcomes:
        detail = f": {outcome.detail}" if outcome.detail else ""
        print(f"{outcome.team}: {words[outcome.outcome]}{detail}")
    return EXIT_ERROR if any(o.outcome == "failed" for o in outcomes) else 0


def _cycle_finished_since(path: Path, started: datetime) -> dict[str, object] | None:
    """The summary of a cycle that started at or after `started` and finished, if any."""
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    with open_warehouse(path, lock_wait_s=30) as con:
        last = Store(con).last_cycle()
    if last is None or last[1] < started or last[2] is None or not last[3]:
        return None
    summary: dict[str, object] = json.loads(last[3])
    return summary


def _run_cycle(config_path: Path) -> Mapping[str, Any]:
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.watch_cycle import watch_cycle
    from tasks.publish.ui import api_answers, api_url, record_unrecorded_runs
    from vigie.serve import check_api_answers
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = load_settings(config_path)
    load_secrets(settings)
    check_api_answers()
    # Open (and migrate) the warehouse before Prefect starts, so a broken or locked file is
    # reported in one line rather than as a failed flow run.
    with open_warehouse(settings.warehouse_path, verify=True) as con:
        unrecorded = Store(con).unrecorded_runs()
    for line in record_unrecorded_runs(settings.warehouse_path, unrecorded):
        print(f"vigie: {line}", file=sys.stderr, flush=True)
    # A second earlier: the warehouse keeps microseconds, the flow's clock starts after this.
    started = datetime.now(UTC) - timedelta(seconds=1)
    run_ids: list[str] = []  # this cycle's flow run, to note it if the server goes away

    def remember_run(flow: object, flow_run: object, state: object) -> None:
        run_ids.append(str(getattr(flow_run, "id", "")))

    cycle = watch_cycle.with_options(on_running=[*watch_cycle.on_running_hooks, remember_run])
    try:
        with ProgressBar("fetching", "sources") as bar, reporting("fetch", bar):
            return cycle(str(config_path))
    except (httpx.HTTPError, PrefectHTTPStatusError) as err:
        # Sources and SMTP do not use httpx: this is the Prefect API, gone during the cycle
        # (the flow run's state could not be recorded). The warehouse says what was done.
        url = api_url()
        if url is None or api_answers(url):
            raise
        if run_ids:  # the next cycle with the server back records how this run ended
            with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
                Store(con).note_unrecorded_run(run_ids[-1], datetime.now(UTC))
        summary = _cycle_finished_since(settings.warehouse_path, started)
        done = (
            f"cycle {summary['cycle_id']} was loaded and its emails sent, but its run is not "
            "recorded in Prefect"
            if summary is not None
            else "the cycle did not finish; the next one collects what it missed"
        )
        raise PrefectUnreachable(
            f"the Prefect API at {url} stopped answering during the cycle "
            f"({type(err).__name__}): {done}",
            summary,
        ) from err


def _print_cycle(summary: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, ensure_ascii=False), flush=True)
        return
    failed = summary["sources_failed"]
    print(
        f"cycle {summary['cycle_id']}: {summary['sources_ok']} sources ok, "
        f"{len(failed)} failed, {summary['new_mentions']} new mentions, "  # type: ignore[arg-type]
        f"{len(summary['alerts_opened'])} alerts opened, "  # type: ignore[arg-type]
        f"{summary['emails_sent']} emails sent ({summary['duration_s']:.1f} s)",
        flush=True,
    )


def _exit_now(code: int) -> NoReturn:
    """Exit without Prefect's at-exit flush: with its API gone, its event and log queues
    would retry every item for minutes before the process could end (the data is in the
    warehouse, and the queued items are only the run's telemetry for the UI)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_run(args: argparse.Namespace) -> int:
    from tasks.publish.ui import quiet_api_outage_logs

    config_path = resolve_config_path(args.config)
    settings = load_settings(config_path)
    # Alerts to placeholder addresses would reach nobody: say so where the watch is started.
    _warn_placeholders(settings, file=sys.stderr)
    quiet_api_outage_logs()
    while True:
        try:
            _print_cycle(_run_cycle(config_path), args.json)
        except KeyboardInterrupt:
            # Prefect says its run crashed; say what that means for the watch.
            print(
                f"vigie: interrupted: what this cycle loaded is kept in {settings.warehouse_path} "
                "(each load is whole or nothing); the next cycle fetches again the sources not "
                "loaded yet and sends what waits in the outbox",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_INTERRUPTED
        except PrefectUnreachable as err:
            # The watch goes on without the UI: each cycle tries again, and the next one
            # after the server is back collects what the skipped ones missed.
            if err.summary is not None:
                _print_cycle(err.summary, args.json)
            if args.once:
                print(f"vigie: {one_line(err)}", file=sys.stderr, flush=True)
                _exit_now(EXIT_ERROR)
            minutes = settings.schedule.watch_every_minutes
            print(f"vigie: {one_line(err)}; next try in {minutes} min", file=sys.stderr, flush=True)
        if args.once:
            return 0
        time.sleep(settings.schedule.watch_every_minutes * 60)


def outside_volume_lines(volumes: Sequence[tuple[str, str, int, float | None]]) -> list[str]:
    """What the outside timelines (GDELT) counted in the last hour against the day before,
    an outside check of Vigie's own spike: one line per source."""
    lines = []
    for source, query, last_hour, per_hour in volumes:
        before = "nothing counted" if per_hour is None else f"{per_hour:.1f}/h"
        lines.append(
            f"GDELT ({source}, {query}): {last_hour} articles in the last hour "
            f"vs {before} the day before"
        )
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    from tasks.notify.delivery import MAX_ATTEMPTS
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5, verify=True) as con:
        store = Store(con)
        last = store.last_cycle()
        health = store.source_health()
        alerts = store.open_alerts()
        stories = store.alert_stories([alert[0] for alert in alerts])
        unsent = store.unsent_count()
        undelivered = store.undelivered(MAX_ATTEMPTS)
        counts = store.counts(drills=False)  # drills are rehearsals, not the watch
        outside = store.outside_volume(datetime.now(UTC)) if alerts else []
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
    for row in health:
        name, status, _last_run, last_ok, failures, error, degraded_since = row[:7]
        state, state_since, state_reason = row[7:]
        when = f"{last_ok:%Y-%m-%d %H:%M}" if last_ok else "never"
        line = f"  {name}: {status or 'not run yet'}, last success {when}"
        if state != "ok":
            line += f", {state.upper().replace('_', ' ')} since {state_since:%Y-%m-%d %H:%M}"
            line += f" ({state_reason})"
        elif failures:
            line += f", {failures} failure(s) in a row: {error}"
        if degraded_since:
            line += f", DEGRADED (most rows quarantined) since {degraded_since:%Y-%m-%d %H:%M}"
        print(line)
    print(f"Open alerts: {len(alerts)}")
    for alert_id, topic, level, status, opened_at, in_window, _ in alerts:
        print(
            f"  {alert_id} [{level}] {topic}: {status} since {opened_at:%Y-%m-%d %H:%M %Z}, "
            f"{in_window} mentions in window"
        )
        if alert_id in stories:
            print(f"    opened by a story spreading fast: {stories[alert_id]}")
        for line in outside_volume_lines(outside):
            print(f"    {line}")
    print(f"Emails waiting in the outbox: {unsent}")
    for message_id, kind, subject, uncertain_at, attempts, error, critical in undelivered:
        if uncertain_at:
            why = f"UNCERTAIN, not sent again: {error} (check, then vigie outbox resend)"
        elif critical:
            why = f"still tried at every delivery, {attempts} attempts: {error}"
        else:
            why = f"given up after {attempts}: {error} (vigie outbox resend)"
        print(f"  {message_id} [{kind}] {subject[:80]}: {why}")
    return 0


def _day(value: str) -> datetime:
    """A --since/--until value: an ISO date or date-time, UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from warehouse.connection import connect, migrate

    settings = _settings(args)
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

    settings = _settings(args)
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

    settings = _settings(args)
    result = check_warehouse(settings.warehouse_path, lock_wait_s=30)
    print(
        f"{result.path}: readable whole ({result.tables} tables, {result.rows:,} rows, "
        f"{result.size / 1e6:.1f} MB read in {result.seconds:.1f} s)"
    )
    return 0


def cmd_db_export(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
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

    settings = _settings(args)
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

    settings = _settings(args)
    restore_warehouse(Path(args.backup), settings.warehouse_path)
    print(f"{settings.warehouse_path} restored from {args.backup}")
    return 0


def cmd_db_prune(args: argparse.Namespace) -> int:
    from tasks.operations import prune_raw_text

    settings = _settings(args)
    result = prune_raw_text(
        settings.warehouse_path, settings.retention.raw_text_days, datetime.now(UTC)
    )
    print(result.describe())
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from tasks.enrich.quality import quality_report
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    now = datetime.now(UTC)
    with open_warehouse(settings.warehouse_path, lock_wait_s=10) as con:
        report = quality_report(
            Store(con), since=now - timedelta(days=args.days), now=now, settings=settings
        )
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    print(f"Mentions collected in the last {args.days} days: {report.mentions}")
    print(f"  language undetermined: {report.undetermined_language:.1%}")
    print(f"  empty title: {report.empty_title:.1%}, empty summary: {report.empty_summary:.1%}")
    print(
        f"  duplicates that slipped through: {report.duplicate_urls} URLs, "
        f"{report.duplicate_titles} same-title groups"
    )
    print("Per source (loaded / quarantined):")
    for row in report.per_source:
        flag = f"  DEGRADED since {row['degraded_since'][:16]}" if row["degraded_since"] else ""
        print(
            f"  {row['source']}: {row['loaded']} / {row['quarantined']} "
            f"({row['quarantined_share']:.1%} quarantined){flag}"
        )
    if report.checks:
        print("Expectations on stored mentions:")
        for check in report.checks:
            verdict = "pass" if check.success else f"FAIL ({check.unexpected} rows)"
            print(f"  {check.label}: {verdict}")
    return 0


def cmd_detect_series(args: argparse.Namespace) -> int:
    from tasks.detect.series import read_series, score_series, write_scores

    timestamps, values = read_series(Path(args.input))
    scores = score_series(timestamps, values)
    write_scores(Path(args.output), timestamps, scores)
    alerts = sum(1 for s in scores if s >= 0.5)
    print(
        f"{len(scores)} buckets scored, {alerts} at or above 0.5 -> {args.output}", file=sys.stderr
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tasks.operations import replay_configured
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    if args.until <= args.since:
        raise ConfigError("--until must come after --since")
    step = timedelta(minutes=args.step or settings.detection.window_minutes)
    print(
        f"Replaying detection from {args.since:%Y-%m-%d %H:%M} to {args.until:%Y-%m-%d %H:%M} "
        f"UTC every {step.total_seconds() / 60:g} min over {len(settings.watch)} topics "
        f"(sensitivity {settings.detection.sensitivity})",
        flush=True,
    )
    with (
        open_warehouse(settings.warehouse_path, lock_wait_s=10) as con,
        ProgressBar("replaying", "steps") as progress,
    ):
        alerts = replay_configured(
            Store(con), settings, since=args.since, until=args.until, step=step, progress=progress
        )
    if not alerts:
        print("No alert would have opened.")
    for alert in alerts:
        parts = ", ".join(f"{k} {v:g}" for k, v in alert.contributions.items() if v)
        end = f"resolved {alert.resolved_at:%Y-%m-%d %H:%M}" if alert.resolved_at else "still open"
        story = f", breaking story {alert.story_title!r}" if alert.story_title else ""
        print(
            f"{alert.opened_at:%Y-%m-%d %H:%M} {alert.topic}: {alert.level.upper()} "
            f"(severity {alert.severity:g}: {parts}){story}, highest {alert.highest_level}, {end}"
        )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from vigie.errors import QueryError
    from vigie.query import parse_query, render_query, text_words

    if args.tested is not None:
        if args.query != "test":
            raise ConfigError(
                "give one query, quoted for the shell: vigie query 'a OR b' "
                "(or vigie query test 'a OR b' to try it on the stored mentions)"
            )
        return cmd_query_test(args)
    if args.since or args.limit is not None or args.json:
        raise ConfigError("--since, --limit and --json go with: vigie query test 'QUERY'")
    try:
        node = parse_query(args.query)
    except QueryError as err:
        # Not a configuration file, so the query itself can be shown with a caret under the fault.
        print(f"vigie: {err.caret()}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"query: {render_query(node)}")
    if sys.stdin.isatty():
        return 0
    for line in sys.stdin:
        text = line.rstrip("\n")
        print(f"{'match' if node.matches(text_words(text)) else '-':<6}{text}")
    return 0


def cmd_score_text(args: argparse.Namespace) -> int:
    from vigie.sentiment import score_texts

    batch: list[str] = []

    def flush() -> None:
        for result in score_texts(batch, args.lang):
            print(
                json.dumps(
                    {"lang": result.lang, "score": round(result.score, 4), "label": result.label}
                ),
                flush=False,
            )
        sys.stdout.flush()
        batch.clear()

    # One JSON line out per line in, in order; scored in batches (much faster than one by one).
    for line in sys.stdin:
        batch.append(line.rstrip("\n"))
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    from tasks.publish.events import acknowledged_event, emit_from_command
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    by = " ".join(args.by.split())[:120]
    if not by:
        raise ConfigError("--by needs the name of the person who takes charge")
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        before = store.acknowledge_alert(args.alert_id, by, datetime.now(UTC))
        event = acknowledged_event(store, args.alert_id, by) if before == "open" else None
    if before == "open":
        print(f"{args.alert_id} acknowledged by {by}")
    else:
        print(f"{args.alert_id} was already {before}; nothing changed")
    # The Prefect event, when a Prefect server is configured (PREFECT_API_URL) and answers.
    note = emit_from_command([event] if event else [])
    if note:
        print(note, file=sys.stderr)
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from tasks.load import send_pending
    from tasks.operations import queue_digest

    settings = _settings(args)
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

    settings = _settings(args)
    secrets = load_secrets(settings)
    paged, report = escalate_and_send(
        settings.warehouse_path, settings, secrets, now=datetime.now(UTC)
    )
    for line in paged or ["no alert waits for escalation"]:
        print(line)
    print(f"emails sent {len(report.sent)}, failed {len(report.failed)}, held {len(report.held)}")
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from tasks.notify.delivery import MAX_ATTEMPTS
    from warehouse.connection import open_warehouse

    settings = _settings(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5) as con:
        rows = con.execute(
            "SELECT message_id, kind, subject, attempts, not_before, held_reason, uncertain_at, "
            "last_error, critical, sending_at, coalesce(uncertain_sendings, 0) FROM outbox "
            "WHERE sent_at IS NULL ORDER BY created_at, message_id"
        ).fetchall()
    if not rows:
        print("The outbox is empty: every email was sent.")
    for message_id, kind, subject, attempts, not_before, held, uncertain, error, *more in rows:
        critical, sending_at, uncertain_sendings = more
        if uncertain is not None:
            state = f"UNCERTAIN ({error}; check, then `vigie outbox resend`)"
        elif sending_at is not None:
            state = f"being sent since {sending_at:%Y-%m-%d %H:%M:%S %Z}"
        elif uncertain_sendings:
            state = f"second sending due, the first could not be confirmed ({error})"
        elif attempts >= MAX_ATTEMPTS and not critical:
            state = f"GIVEN UP after {attempts} attempts: {error}"
        elif held:
            state = f"held ({held}) until {not_before:%Y-%m-%d %H:%M %Z}"
        elif error:
            when = f"after {not_before:%Y-%m-%d %H:%M %Z}" if not_before else "at the next delivery"
            state = f"retry {when} ({attempts} attempts): {error}"
        else:
            state = "pending"
        print(f"{message_id} [{kind}] {subject[:80]}: {state}")
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=5) as con:
        again = Store(con).resend(args.message_id)
    if not again:
        raise VigieError(
            f"{args.message_id}: no unsent message with this id in the outbox "
            "(`vigie outbox list` shows them)"
        )
    print(f"{args.message_id} will be sent by the next cycle")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from vigie.deployments import find_prefect_yaml, read_deployments
    from vigie.serve import (
        check_api_answers,
        require_api_url,
        runner_deployments,
        serve_deployments,
        take_over,
    )

    api_url = require_api_url()
    config_path = resolve_config_path(args.config).resolve()
    settings = load_settings(config_path)
    load_secrets(settings)
    found = Path(args.prefect_yaml) if args.prefect_yaml else find_prefect_yaml(config_path)
    if found is None or not found.is_file():
        raise ConfigError(
            f"{found or 'prefect.yaml'}: not found (run from the project folder, or give "
            "--prefect-yaml)"
        )
    prefect_yaml = found.resolve()
    specs = read_deployments(prefect_yaml)
    _warn_schedule_drift(settings, prefect_yaml)
    check_api_answers()
    # Entrypoints are paths in the project folder, and served runs start in this folder.
    os.chdir(prefect_yaml.parent)
    deployments = runner_deployments(specs, config_path)
    replaced = take_over(deployments)
    if replaced:
        print(f"Replacing what `prefect deploy` registered: {', '.join(replaced)}", flush=True)
    print(
        f"Serving {len(deployments)} deployments of {prefect_yaml} with {config_path} "
        f"on {api_url} (stop with Ctrl-C or SIGTERM):",
        flush=True,
    )
    for spec in specs:
        print(f"  {spec.name}/{spec.name}: {spec.describe_schedules()}", flush=True)
    try:
        _set_up_watch_automation(settings)
    except VigieError as err:  # the watch itself matters more: serve, and say so
        print(f"vigie: warning: {err}; `vigie watchdog` in cron still watches", file=sys.stderr)
    serve_deployments(deployments, limit=args.limit)
    print("Stopped: the served deployments are paused until the next `vigie serve`.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.run import run_demo

    return run_demo(Path(args.workdir))


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
    print(
        f"Drill {drill_id_for(args.name)}: the alert goes to the cell; take charge with "
        f"vigie ack ALERT --by NAME (waiting up to {args.ack_wait} min)",
        file=sys.stderr if args.json else sys.stdout,
        flush=True,
    )
    result = drill(args.name, ack_wait_minutes=args.ack_wait, config_path=str(config_path))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(
        f"drill {result['drill_id']}: {result['status']}, alert {result['alert_id'] or '-'}, "
        f"time to detect {format_duration(result['time_to_detect_s'])}, "
        f"time to acknowledge {format_duration(result['time_to_ack_s'])}"
        + (f" ({result['acknowledged_by']})" if result["acknowledged_by"] else "")
    )
    return 0


def cmd_incident_list(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import IncidentStore

    settings = _settings(args)
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        incidents = IncidentStore(con).incidents()
    if not incidents:
        print("No incident yet (start incident mode from the Prefect UI: incident-mode).")
    for incident in incidents:
        end = incident.ended_at or incident.ends_at
        stop = f", stop asked by {incident.stop_requested_by}" if incident.stop_requested_at else ""
        print(
            f"{incident.incident_id} {incident.name!r} {incident.status}{stop}: "
            f"{incident.started_at:%Y-%m-%d %H:%M %Z} -> {end:%Y-%m-%d %H:%M %Z}, "
            f"{incident.sitreps} situation report(s)"
        )
    return 0


def cmd_incident_stop(args: argparse.Namespace) -> int:
    from warehouse.connection import open_warehouse
    from warehouse.store import IncidentStore

    settings = _settings(args)
    by = " ".join(args.by.split())[:120] or "vigie incident stop"
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        incident = IncidentStore(con).request_incident_stop(args.name, by, datetime.now(UTC))
    if incident is None:
        raise VigieError(f"no incident named {args.name!r} is running (vigie incident list)")
    print(
        f"{incident.incident_id} will stop after its current cycle and send its report "
        f"(asked by {by})"
    )
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    import webbrowser

    from cli.preview import make_preview, output_path, preview_page, write_preview
    from tasks.notify.emails import header_safe

    settings = _settings(args)
    if args.team is not None and args.kind != "readiness":
        raise ConfigError("--team applies to readiness reminders only")
    now = datetime.now(UTC)
    preview = make_preview(
        settings,
        args.kind,
        data=args.data,
        language=args.language,
        team=args.team,
        period=args.period,
        now=now,
    )
    path = write_preview(
        preview_page(preview, settings, now=now),
        output_path(settings, preview, args.output, args.period),
    )
    language = {"fr": "French", "en": "English"}[preview.language]
    print(
        header_safe(f"{args.kind} email in {language} with {preview.detail}", 400)
        + f", nothing sent: {path}"
    )
    if not preview.message.recipients:
        print("Warning: nobody would receive it: the crisis cell has no members.")
    if args.open and not webbrowser.open(path.as_uri()):
        print(f"No browser could be opened: open {path} yourself.")
    return 0


QUERY_TEST_HELP = """\
vigie query QUERY reads lines on stdin and marks those the query matches.

vigie query test QUERY tries the query on the mentions already stored (published
since --since, the newest 100,000 at most), matched as the watch cycle matches
them (title, summary, author), and shows:
  - how many it matches, of how many, and a sample of them with the terms found;
  - how many mentions hold each term (which term brings what, what a NOT removes);
  - for each configured watch, how many of its stored mentions this query matches
    too (what you would lose by replacing it);
  - near misses: mentions it does not match but that hold some of its terms
    ("has boreale; lacks rappel*"), that a NOT excluded ("excluded by NOT
    recrutement"), or where the two sides of a NEAR are too far apart.
The warehouse keeps only what a configured watch matched: a broader query can only
be tried on those (vigie sources test shows what the sources carry today)."""


def cmd_query_test(args: argparse.Namespace) -> int:
    from cli.querytest import MAX_TESTED, render_query_test, try_query
    from vigie.errors import QueryError
    from vigie.query import parse_query
    from warehouse.connection import open_warehouse
    from warehouse.mention_texts import stored_mention_count, stored_texts
    from warehouse.store import Store

    try:
        node = parse_query(args.tested)
    except QueryError as err:
        print(f"vigie: the query is not valid: {err}", file=sys.stderr)
        return EXIT_CONFIG
    limit = 10 if args.limit is None else args.limit
    if not 1 <= limit <= 1000:
        raise ConfigError("--limit must be between 1 and 1000")
    settings = _settings(args)
    path = settings.warehouse_path
    if not path.exists():
        raise VigieError(
            f"no warehouse yet at {path}: run `vigie run --once` first to collect mentions"
        )
    since = args.since or datetime.now(UTC) - timedelta(days=30)
    with open_warehouse(path, lock_wait_s=10) as con:
        store = Store(con)
        texts, in_window = stored_texts(store, since=since, limit=MAX_TESTED)
        stored = in_window or stored_mention_count(store)
    if not stored:
        raise VigieError(
            f"the warehouse {path} holds no mentions yet: run `vigie run --once` first"
        )
    if not in_window:
        raise VigieError(
            f"no stored mention published since {since:%Y-%m-%d %H:%M} UTC ({stored} older): "
            "try an earlier --since"
        )
    result = try_query(
        node,
        texts,
        since=since,
        in_window=in_window,
        watches=[w.name for w in settings.watch],
        limit=limit,
    )
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(render_query_test(result)))
    return 0


def cmd_sources_test(args: argparse.Namespace) -> int:
    from cli.sourcetest import check_sources, render_table

    settings = _settings(args)
    count = len(set(args.source)) or len(settings.sources)
    print(f"Fetching {count} source(s); nothing is stored ...", file=sys.stderr, flush=True)
    with ProgressBar("fetching", "sources") as progress:
        report = check_sources(settings, args.source, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(render_table(report)))
    return EXIT_ERROR if report.failing else 0


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


def _set_up_watch_automation(settings: Settings) -> None:
    """Create or update the dead man's switch automation on the Prefect server of
    PREFECT_API_URL, and say what it does."""
    from cli.watch_automation import ensure_watch_automation
    from cli.watchdog import duration_text, watchdog_limit

    if not settings.operators:
        print("No watchdog automation: the cell has no members to tell ([[cell.members]]).")
        return
    try:
        setup = ensure_watch_automation(settings, within=watchdog_limit(settings))
    except Exception as err:  # the Prefect client's HTTP and connection errors
        raise VigieError(
            f"the watchdog automation could not be set up on the Prefect server: {one_line(err)}"
        ) from err
    print(
        f"Watchdog automation {setup.name} {setup.action}: the Prefect server emails "
        f"{', '.join(m.email for m in settings.operators)} when no cycle has completed with a "
        f"source answering for {duration_text(setup.within)} (email block {setup.block_name}"
        + (
            f"; the server reads the SMTP password from ${settings.email.password_env} in its "
            "own environment)."
            if settings.email.username
            else ")."
        ),
        flush=True,
    )


def cmd_watchdog(args: argparse.Namespace) -> int:
    from cli.watchdog import check_watch, clear_unreadable, duration_text, stop_notice_id
    from tasks.load import send_pending
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = _settings(args)
    if args.automation:
        from vigie.serve import check_api_answers, require_api_url

        require_api_url()
        check_api_answers()
        _set_up_watch_automation(settings)
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
    from cli.watchdog import send_directly, tell_unreadable
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
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ExampleParser)
    check = sub.add_parser("check", help="validate the configuration and show what is watched")
    check.set_defaults(func=cmd_check)
    run = sub.add_parser("run", help="run watch cycles (one with --once)")
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument("--json", action="store_true", help="print each cycle's summary as JSON")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="last cycle, health of each source, open alerts")
    status.set_defaults(func=cmd_status)
    quality = sub.add_parser(
        "quality", help="re-check recent data and report drift (language, empty texts, ...)"
    )
    quality.add_argument("--days", type=int, default=7, help="how far back (default 7)")
    quality.add_argument("--json", action="store_true", help="print the report as JSON")
    quality.set_defaults(func=cmd_quality)

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
    export.add_argument("--since", type=_day, required=True, help="first day (UTC), included")
    export.add_argument("--until", type=_day, required=True, help="last day (UTC), excluded")
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
        type=_day,
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

    replay = sub.add_parser(
        "replay", help="rerun detection over stored history and list the alerts it would open"
    )
    replay.add_argument("--since", type=_day, required=True, help="start (UTC)")
    replay.add_argument("--until", type=_day, required=True, help="end (UTC)")
    replay.add_argument("--step", type=int, help="minutes between assessments (default: window)")
    replay.set_defaults(func=cmd_replay)

    ack = sub.add_parser("ack", help="acknowledge an alert: someone of the cell takes charge of it")
    ack.add_argument("alert_id")
    ack.add_argument("--by", required=True, help="who takes charge")
    ack.set_defaults(func=cmd_ack)

    query = sub.add_parser(
        "query",
        help="check a watch query on lines of stdin, or test it on the stored mentions",
        usage="vigie query QUERY < lines.txt\n"
        "       vigie query test QUERY [--since DAY] [--limit N] [--json]",
        description=QUERY_TEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument("query", help="the query, quoted for the shell (or: test, then the query)")
    query.add_argument("tested", nargs="?", metavar="QUERY", help=argparse.SUPPRESS)
    query.add_argument(
        "--since",
        type=_day,
        metavar="DAY",
        help="query test: mentions published since DAY (default: the last 30 days)",
    )
    query.add_argument(
        "--limit", type=int, metavar="N", help="query test: examples shown of each kind (10)"
    )
    query.add_argument("--json", action="store_true", help="query test: print one JSON object")
    query.set_defaults(func=cmd_query)

    score = sub.add_parser(
        "score-text",
        help="score the sentiment of each line of stdin (French and English, offline)",
    )
    score.add_argument("--lang", choices=["fr", "en", "auto"], default="auto")
    score.set_defaults(func=cmd_score_text)

    series = sub.add_parser(
        "detect-series",
        help="score a timestamp,value series with the volume detector",
        epilog="Writes timestamp,anomaly_score; a score >= 0.5 is where Vigie would alert (the "
        "live detector and its default settings), and scores stay low while that alert would "
        "stay open.",
    )
    series.add_argument("input", help="CSV with a header timestamp,value (regular buckets)")
    series.add_argument("output", help="CSV to write: timestamp,anomaly_score")
    series.set_defaults(func=cmd_detect_series)

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
    readiness.add_argument("--now", type=_day, help="the moment to act as (ISO, UTC by default)")
    readiness.set_defaults(func=cmd_readiness)

    serve = sub.add_parser(
        "serve",
        help="run every deployment of prefect.yaml on its schedule, in this process",
        epilog="Needs PREFECT_API_URL (a running `prefect server start`). The alternative is\n"
        "`prefect --no-prompt deploy --all` and `prefect worker start --pool vigie-pool`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--prefect-yaml",
        help="the deployments file (default: prefect.yaml here, else beside the configuration)",
    )
    serve.add_argument(
        "--limit",
        type=int,
        help="most flow runs at once (default: no limit; paused acknowledge-alert runs count)",
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the bundled scenario on local servers")
    demo.add_argument("--workdir", default="demo-output", help="folder for the demo's files")
    demo.set_defaults(func=cmd_demo)

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

    preview = sub.add_parser(
        "preview",
        help="render an email (alert, digest, readiness) to an HTML file; nothing is sent",
        epilog="Stored data by default when the warehouse has some (the latest alert, the "
        "digest of the period just ended),\nelse a fictional sample about the organisation; "
        "the warehouse is only read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preview.add_argument("kind", choices=["alert", "digest", "readiness"])
    data = preview.add_mutually_exclusive_group()
    data.add_argument(
        "--sample",
        dest="data",
        action="store_const",
        const="sample",
        help="use the built-in sample, even when the warehouse has data",
    )
    data.add_argument(
        "--stored",
        dest="data",
        action="store_const",
        const="stored",
        help="use stored data only (an error when there is none)",
    )
    preview.set_defaults(data="auto")
    preview.add_argument(
        "--output", help="file to write, or a folder (default: vigie-preview/ beside the config)"
    )
    preview.add_argument(
        "--language", choices=["fr", "en"], help="instead of the one the real email uses"
    )
    preview.add_argument("--open", action="store_true", help="open the file in a web browser")
    preview.add_argument("--team", help="readiness: the team (default: the first configured)")
    preview.add_argument(
        "--period", choices=["daily", "weekly"], default="daily", help="digest: the period"
    )
    preview.set_defaults(func=cmd_preview)

    sources = sub.add_parser("sources", help="the configured sources: test them")
    sources_sub = sources.add_subparsers(dest="sources_command", required=True)
    sources_test = sources_sub.add_parser(
        "test",
        help="fetch every source once, store nothing, and show what each gives",
        description="Fetch every configured source (or those named) once, as the watch cycle\n"
        "does (same parsers, bounds and watch queries), without storing anything: no\n"
        "warehouse, no remembered ETag or marker, no health state. One line per source:\n"
        "status (ok, empty, partial, failed, not a feed), HTTP code, items, how many the\n"
        "watch queries match, the newest item's date (UTC) and the reason of a failure.\n"
        "Progress goes to stderr, the table to stdout. Exit 1 when a source failed or is\n"
        "not a feed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sources_test.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME",
        help="only this source (its name in the configuration); repeat for several",
    )
    sources_test.add_argument("--json", action="store_true", help="print one JSON object")
    sources_test.set_defaults(func=cmd_sources_test)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    disable_telemetry()
    # Without PREFECT_API_URL, Prefect starts a temporary server for the run; on a busy
    # two-core machine its default 20 s to come up is not always enough.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, so that a reader gone away is met inside this `try`
        return code
    except BrokenPipeError:
        # `vigie check | head -1`: the reader has what it wanted. Python's recipe: point stdout
        # at /dev/null so that the flush at exit does not fail again, and end as `yes` does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as err:
        print(f"vigie: {one_line(err)}", file=sys.stderr)
        return EXIT_CONFIG
    except VigieError as err:
        print(f"vigie: {one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
