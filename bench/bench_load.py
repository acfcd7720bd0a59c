"""Benchmark: one watch cycle under load, and how its figures grow from 1x to 10x the load.

1x is 1,000 sources on the local feed farm, a warehouse of 1 million mentions and a burst of
10,000 new mentions in one cycle; 10x is 10,000 sources, 10 million mentions and 100,000 new
mentions (issue 8). For each scale it builds the warehouse (a year of mentions of the watched
topic from the configured sources, as `bench_warehouse.py` builds it, and a week of hourly
collection runs of every source, so the burst is news and not a new source's backfill), starts
the feed farm (every feed holds `ENTRIES` entries published in the last quarter of an hour,
all new to the warehouse and all matched: the burst) and a real SMTP server (aiosmtpd), then
runs `vigie run --once --json` in its own process against a Prefect server, as
`bench_collection.py` does. Figures only; nothing is asserted.

Printed for each scale, side by side with the growth from the first scale:
  cycle time    the flow's whole run (`total_s` of its summary), each step, and the process's
                wall time (imports and Prefect's start included)
  peak memory   the process tree's peak RSS summed (the cycle and its parsing workers), and
                its PSS (the pages the workers share with the cycle counted once)
  detection     the cycle's `detect` step (volume, negativity, vocabulary... of every topic)
  email         from the end of the load step (the burst is in the warehouse) to the alert
                email at the SMTP server, and how long before the end of the cycle it arrived
                (the cycle sends its own outbox), and when each task between them ended;
                times from the Prefect server's task runs

    python bench/bench_load.py [--scales 1,10] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
from bench_warehouse import build

import vigie  # noqa: F401  (telemetry off)
from vigie.localservers import MailSink
from warehouse.connection import open_warehouse

UNIT_SOURCES = 1_000
UNIT_MENTIONS = 1_000_000
ENTRIES = 10  # per feed, all new: the burst is sources x ENTRIES mentions
BURST_DAYS = 0.01  # the feeds' entries are spread over the last 14 minutes
# The tasks between the load and the email, each one's end timed from the load's.
AFTER_LOAD = ("detect", "detect-breaking-stories", "raise-alerts", "escalate", "emit-events")
TOPIC = "acme"  # the name of the watch in harness.vigie_config
# Every entry of the farm has one of these words: each becomes a mention of the topic.
BURST_QUERY = "Northwind OR Acme OR Helios OR the OR la OR le OR les OR de OR a OR on"
HISTORY_HOURS = 168  # the week of hourly windows detection reads (detection.baseline_windows)
# Hourly cycles, as the seeded history; high sensitivity, so that the volume of the burst is
# enough to alert whatever the farm's text says.
EXTRA_CONFIG = """
[schedule]
watch_every_minutes = 60

[detection]
sensitivity = "high"
"""


def seed_collection_runs(path: Path, sources: list[str], end: datetime) -> None:
    """A successful run of every source each hour of the week before `end`, as hourly cycles
    would have left: detection then reads the burst as news, with full coverage."""
    with open_warehouse(path) as con:
        con.execute(
            "INSERT INTO source_runs (cycle_id, source, started_at, duration_s, status, "
            "http_status, bytes, items, new_mentions) "
            "SELECT 'history-' || h, s.name, $end - to_hours(h), 0.1, 'ok', 200, 20000, "
            "$entries, 0 FROM range(1, $hours + 1) r(h), (SELECT unnest($sources) AS name) s",
            {"end": end, "hours": HISTORY_HOURS, "sources": sources, "entries": ENTRIES},
        )
        con.execute("CHECKPOINT")


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cycle_times(api: str) -> dict[str, datetime]:
    """Start and end of the latest flow run and the end of each of its task runs, from the
    Prefect server (task names without their run suffix: `load-warehouse`, `send-outbox`...)."""
    run = harness.get_json(
        f"{api}/flow_runs/filter", "POST", {"sort": "START_TIME_DESC", "limit": 1}
    )[0]
    times = {"cycle-start": _iso(run["start_time"]), "cycle-end": _iso(run["end_time"])}
    tasks = harness.get_json(
        f"{api}/task_runs/filter",
        "POST",
        {"flow_runs": {"id": {"any_": [run["id"]]}}, "limit": 200},
    )
    for task in tasks:
        if task.get("end_time"):
            times[task["name"].rsplit("-", 1)[0]] = _iso(task["end_time"])
    return times


def run_scale(
    scale: float, args: argparse.Namespace, script: Path, env: dict[str, str], work: Path
) -> dict[str, Any]:
    sources = round(UNIT_SOURCES * args.unit * scale)
    mentions = round(UNIT_MENTIONS * args.unit * scale)
    state = work / f"scale-{scale:g}"
    state.mkdir()
    names = [f"feed-{i:05d}" for i in range(sources)]
    now = datetime.now(UTC)
    built = build(
        state / "vigie.duckdb", mentions, 1, end=now, topic_names=[TOPIC], source_names=names
    )
    seed_collection_runs(state / "vigie.duckdb", names, now)
    print(f"  {scale:g}x: warehouse of {mentions:,} mentions built in {built:.0f} s", flush=True)
    children: list[subprocess.Popen[bytes]] = []
    try:
        started = time.monotonic()
        farm, _ = harness.start_farm(
            script,
            state / "farm",
            feeds=sources,
            entries=ENTRIES,
            latency_ms=args.latency_ms,
            days=BURST_DAYS,
        )
        children.append(farm)
        urls = (state / "farm" / "urls.txt").read_text().split()
        print(f"  {scale:g}x: farm of {len(urls):,} feeds up in {time.monotonic() - started:.0f} s")
        with MailSink(state / "inbox") as mail:
            config = harness.vigie_config(
                state, urls, mail.port, args.concurrency, query=BURST_QUERY, extra=EXTRA_CONFIG
            )
            measured = harness.measure(harness.vigie_cycle_argv(config), env, state / "cycle.out")
            arrivals = sorted(int(p.stem) for p in mail.folder.glob("*.eml"))
        summary = json.loads((state / "cycle.out").read_text().splitlines()[-1])
    finally:
        harness.stop_all(children)
    times = cycle_times(env["PREFECT_API_URL"])
    measured["summary"] = summary
    measured["emails"] = len(arrivals)
    if arrivals:
        first = datetime.fromtimestamp(arrivals[0] / 1e9, UTC)
        measured["email_after_load_s"] = (first - times["load-warehouse"]).total_seconds()
        measured["email_before_end_s"] = (times["cycle-end"] - first).total_seconds()
        measured["email_after_start_s"] = (first - times["cycle-start"]).total_seconds()
    for name in AFTER_LOAD:
        if name in times:
            measured[f"{name}_after_load_s"] = (
                times[name] - times["load-warehouse"]
            ).total_seconds()
    measured.update(sources=sources, mentions=mentions)
    topic = summary["topics"].get(TOPIC, {})
    print(
        f"  {scale:g}x: cycle {summary['total_s']:.1f} s, {summary['new_mentions']:,} new "
        f"mentions, level {topic.get('level')}, {len(arrivals)} email(s)",
        flush=True,
    )
    shutil.rmtree(state, ignore_errors=True)  # the 10x warehouse is about a gigabyte
    return measured


def _row(label: str, values: list[float | None], fmt: str) -> str:
    cells = [format(v, fmt) if v is not None else "-" for v in values]
    base = values[0]
    growth = [f"{v / base:.1f}x" if v is not None and base else "-" for v in values[1:]]
    return f"{label:34}" + "".join(f"{c:>12}" for c in cells) + "".join(f"{g:>9}" for g in growth)


def report(scales: list[float], results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"Load: one watch cycle per scale; load average now {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    header = f"{'':34}" + "".join(f"{f'{s:g}x':>12}" for s in scales)
    header += "".join(f"{f'{s:g}x/{scales[0]:g}x':>9}" for s in scales[1:])
    print(header)
    print("-" * len(header))

    def column(key: str) -> list[float | None]:
        return [r.get(key) for r in results]

    def summary(key: str) -> list[float | None]:
        return [r["summary"].get(key) for r in results]

    print(_row("sources", column("sources"), ",d"))
    print(_row("warehouse mentions", column("mentions"), ",d"))
    print(_row("new mentions in the cycle (burst)", summary("new_mentions"), ",d"))
    print(_row("cycle time, flow (s)", summary("total_s"), ".1f"))
    for step in results[0]["summary"]["steps"]:
        print(_row(f"  {step}", [r["summary"]["steps"].get(step) for r in results], ".2f"))
    print(_row("cycle time, process wall (s)", column("wall_s"), ".1f"))
    print(_row("CPU time, process tree (s)", column("cpu_s"), ".1f"))
    print(_row("peak memory, process tree (MB)", column("peak_mb"), ".0f"))
    print(_row("peak PSS, process tree (MB)", column("peak_pss_mb"), ".0f"))
    print(_row("detection time (s)", [r["summary"]["steps"].get("detect") for r in results], ".2f"))
    print(_row("email after the load step (s)", column("email_after_load_s"), ".2f"))
    for name in AFTER_LOAD:
        print(_row(f"  {name} ended after it (s)", column(f"{name}_after_load_s"), ".2f"))
    print(_row("email after the cycle's start (s)", column("email_after_start_s"), ".2f"))
    print(_row("email before the cycle's end (s)", column("email_before_end_s"), ".2f"))
    for scale, result in zip(scales, results, strict=True):
        topic = result["summary"]["topics"].get(TOPIC, {})
        print(
            f"  {scale:g}x: {result['emails']} email(s); topic {TOPIC}: level "
            f"{topic.get('level')}, severity {topic.get('severity')}, "
            f"{topic.get('mentions')} mentions in the window"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--farm", type=Path, default=harness.DEFAULT_FARM, help="folder of feedfarm.py"
    )
    parser.add_argument("--scales", default="1,10", help="multiples of the 1x load (1,3,10...)")
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the load: 100 sources at 1x"
    )
    parser.add_argument("--latency-ms", type=int, default=100, help="the farm's answer delay")
    parser.add_argument("--concurrency", type=int, default=128, help="Vigie's global bound")
    args = parser.parse_args()
    args.unit = 0.1 if args.quick else 1.0
    scales = [float(s) for s in args.scales.split(",") if s]
    script = harness.farm_script(args.farm)
    if script is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="vigie-bench-load-"))
    env = {**os.environ, **harness.QUIET_ENV}
    print(f"Load benchmark: scales {args.scales} of {UNIT_SOURCES * args.unit:,.0f} sources")
    children: list[subprocess.Popen[bytes]] = []
    try:
        children.append(harness.start_prefect_server(env, work / "prefect"))
        results = [run_scale(scale, args, script, env, work) for scale in scales]
    finally:
        harness.stop_all(children)
        shutil.rmtree(work, ignore_errors=True)
    report(scales, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
