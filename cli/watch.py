"""The watch: check the configuration, run cycles, status, quality, serve the deployments,
the demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    exit_now,
    set_up_watch_automation,
    settings_of,
    undelivered_why,
)
from cli.examples import ExampleParser
from cli.words import say
from vigie.errors import ConfigError, PrefectUnreachable, VigieError, one_line
from vigie.progress import ProgressBar, reporting
from vigie.settings import Settings, load_secrets, load_settings, resolve_config_path, source_token

# What a served run would import each time, imported once by `vigie serve`'s fork server
# (vigie/serve.py): the watch cycle's flow (Prefect, the tasks, DuckDB, pandas) and Great
# Expectations, which validates each batch (together about 7 s of CPU per fresh process).
SERVED_PRELOAD = ("flows.watch_cycle", "great_expectations")


def cmd_check(args: argparse.Namespace) -> int:
    from cli.channel_lines import channel_check_lines

    settings = settings_of(args)
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
    for line in channel_check_lines(settings):
        print(line)
    _warn_host_capacity(settings)
    _warn_placeholders(settings)
    _warn_schedule_drift(settings, None)
    _warn_tokens(settings)
    _warn_loopback_ui(settings)
    load_secrets(settings)  # a missing secret is reported after the summary, and fails the check
    return 0


def _warn_loopback_ui(settings: Settings) -> None:
    """One line when the emails' Prefect links would point at this machine only."""
    from prefect.settings import PREFECT_UI_URL

    from tasks.notify.rendering import loopback_ui_warning

    warning = loopback_ui_warning(settings.prefect.public_ui_url, PREFECT_UI_URL.value())
    if warning:
        print(warning)


def _warn_host_capacity(settings: Settings) -> None:
    """One line for each host whose sources cannot all be polled each cycle at the configured
    bounds, from the fetch times measured in the last week when the warehouse can be read."""
    from tasks.collect.capacity import host_capacity_warnings

    lines = host_capacity_warnings(
        settings.sources,
        settings.collection,
        cycle_minutes=settings.schedule.watch_every_minutes,
        fetch_times=_recent_fetch_times(settings.warehouse_path),
    )
    for line in lines:
        print(line)


def _recent_fetch_times(path: Path) -> dict[str, float]:
    """Each source's median fetch time over the last week; empty when the warehouse does not
    exist yet or cannot be read now (a cycle holds it): `check` never waits nor fails on it."""
    if not path.is_file():
        return {}
    import duckdb

    from warehouse.connection import connect
    from warehouse.store import Store

    try:
        con = connect(path, lock_wait_s=0, read_only=True)
    except (VigieError, duckdb.Error):
        return {}
    try:
        return Store(con).typical_fetch_seconds(datetime.now(UTC) - timedelta(days=7))
    except duckdb.Error:
        return {}  # a warehouse from before source_runs kept durations, or damaged
    finally:
        con.close()


def _warn_tokens(settings: Settings) -> None:
    """A token that is not here: the source would fail where the environment is this one (the
    watch may run elsewhere, with its own environment, so it is a warning)."""
    for source in settings.sources:
        try:
            source_token(source)
        except ConfigError as err:
            print(f"Warning: source {source.name!r}: {err}; it fails in this environment")


def _warn_placeholders(settings: Settings, file: TextIO | None = None) -> None:
    """One line naming what `vigie init` left to fill in, on `file` (stdout when None: the one
    of the moment, not the one of import time)."""
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
    from tasks.publish.situation import cycle_result
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
            # A cycle whose emails failed ends Failed, with its summary (the outbox retries).
            return cycle_result(cycle(str(config_path), return_state=True))
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
    deferred = len(summary.get("sources_deferred") or ())
    print(
        f"cycle {summary['cycle_id']}: {summary['sources_ok']} sources ok, "
        f"{len(failed)} failed, "  # type: ignore[arg-type]
        + (f"{deferred} deferred to the next cycle, " if deferred else "")
        + f"{summary['new_mentions']} new mentions, "
        f"{len(summary['alerts_opened'])} alerts opened, "  # type: ignore[arg-type]
        f"{summary['emails_sent']} emails sent ({summary['duration_s']:.1f} s)",
        flush=True,
    )


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
                exit_now(EXIT_ERROR)
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
    from cli.channel_lines import channel_status_lines
    from tasks.notify.delivery import MAX_ATTEMPTS
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
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
        channel_lines = channel_status_lines(con)
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
        why = undelivered_why(uncertain_at, attempts, error, critical)
        print(f"  {message_id} [{kind}] {subject[:80]}: {why}")
    for line in channel_lines:
        print(line)
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    from tasks.enrich.quality import quality_report
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    settings = settings_of(args)
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


def cmd_serve(args: argparse.Namespace) -> int:
    from vigie.deployments import find_prefect_yaml, read_deployments
    from vigie.serve import (
        check_api_answers,
        end_run_processes,
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
        set_up_watch_automation(settings)
    except VigieError as err:  # the watch itself matters more: serve, and say so
        print(f"vigie: warning: {err}; `vigie watchdog` in cron still watches", file=sys.stderr)
    started = datetime.now(UTC)
    try:
        serve_deployments(deployments, limit=args.limit, preload=SERVED_PRELOAD)
    finally:
        # Even after a second Ctrl-C cut Prefect's own shutdown short; further signals wait
        # for this (SIGKILL still ends it at once).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _close_left_runs(
            [f"{d.flow_name}/{d.name}" for d in deployments],
            started,
            settings.organisation.language,
        )
        end_run_processes()
    print("Stopped: the served deployments are paused until the next `vigie serve`.")
    return 0


def _close_left_runs(deployment_names: list[str], started: datetime, language: str) -> None:
    """Runs this serve left unfinished (their processes end with it) are closed with a
    message, and an incident-mode run's incident ends with its report."""
    from flows.incident import close_incident_of_run, incident_mode
    from tasks.publish.runs import close_left_runs

    def end_incident(flow: str, run: Any, state: Any) -> None:
        if flow == incident_mode.name:
            try:
                close_incident_of_run(incident_mode, run, state)
            except VigieError as err:
                print(f"vigie: {run.name}: {one_line(err)}", file=sys.stderr, flush=True)

    for left in close_left_runs(deployment_names, started, on_closed=end_incident):
        line = say(language, "serve.left", name=left.name, flow=left.flow, state=left.state)
        print(line, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.run import run_demo

    return run_demo(Path(args.workdir))


def add_commands(sub: argparse._SubParsersAction[ExampleParser]) -> None:
    """The parsers of these commands."""
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
