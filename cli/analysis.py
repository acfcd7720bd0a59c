"""Looking into the data: replay detection, test queries and sources, score texts and series,
preview emails."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli.common import EXIT_CONFIG, EXIT_ERROR, parse_day, settings_of
from cli.examples import ExampleParser
from cli.preview_kinds import KINDS
from vigie.errors import ConfigError, VigieError
from vigie.progress import ProgressBar


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

    settings = settings_of(args)
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


def cmd_preview(args: argparse.Namespace) -> int:
    import webbrowser

    from cli.preview import make_preview, output_path, preview_page, write_preview
    from tasks.notify.emails import header_safe

    settings = settings_of(args)
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
    settings = settings_of(args)
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

    settings = settings_of(args)
    count = len(set(args.source)) or len(settings.sources)
    print(f"Fetching {count} source(s); nothing is stored ...", file=sys.stderr, flush=True)
    with ProgressBar("fetching", "sources") as progress:
        report = check_sources(settings, args.source, progress=progress)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(render_table(report)))
    return EXIT_ERROR if report.failing else 0


def add_commands(sub: argparse._SubParsersAction[ExampleParser]) -> None:
    """The parsers of these commands."""
    replay = sub.add_parser(
        "replay", help="rerun detection over stored history and list the alerts it would open"
    )
    replay.add_argument("--since", type=parse_day, required=True, help="start (UTC)")
    replay.add_argument("--until", type=parse_day, required=True, help="end (UTC)")
    replay.add_argument("--step", type=int, help="minutes between assessments (default: window)")
    replay.set_defaults(func=cmd_replay)

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
        type=parse_day,
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

    preview = sub.add_parser(
        "preview",
        help="render an email (alert, escalation, digest, readiness, source-health, watchdog, "
        "drill-report, sitrep, incident-report) to an HTML file; nothing is sent",
        epilog="Stored data by default when the warehouse has some (the latest alert, the "
        "digest of the period just ended),\nelse a fictional sample about the organisation; "
        "the warehouse is only read.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preview.add_argument(
        "kind",
        choices=KINDS,
    )
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
