"""Benchmark: polling a farm of 1,000 local feeds, Vigie's cycle against two other pollers.

Starts the feed farm of `shared/bench/feedfarm.py` (every request waits --latency-ms; ETag and
Last-Modified, 304, gzip) and a Prefect server, then for each contender runs three polls, each
in its own process: a first poll with fresh state, an unchanged re-poll, and a poll after
`feedfarm.py ctl mutate --frac 0.1 --k 5`. Contenders:

  vigie     `vigie run --once --json` on a generated config (the farm's URLs, a temporary
            warehouse, a watch query that matches part of the farm's content); its summary's
            duration_s and per-step times are printed too
  reader    the `reader` library's update_feeds(workers=32) (optional extra `bench`)
  requests  requests + 32 threads + feedparser, remembering ETag and Last-Modified

Per poll: wall time of the process, its CPU time (user + system, children included), its peak
RSS, entries per second (entries of the feeds served with 200 / wall time) and 304 answers,
from the farm's counters (reset before every poll). Medians over --repeat runs. Figures only.

    python bench/bench_collection.py [--feeds 1000] [--repeat 1] [--contenders vigie,reader]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    DEFAULT_FARM,
    QUIET_ENV,
    farm_script,
    get_json,
    measure,
    start_farm,
    start_prefect_server,
    stop_all,
    vigie_config,
    vigie_cycle_argv,
)

POLLS = ("first", "unchanged", "mutated")


# -- contenders run in their own process (`bench_collection.py _poll KIND STATE URLS`) ---------


def _poll_reader(state: Path, urls: list[str]) -> dict[str, Any]:
    from reader import make_reader

    reader = make_reader(str(state / "reader.sqlite"))
    if not list(reader.get_feeds(limit=1)):
        for url in urls:
            reader.add_feed(url, exist_ok=True)
    before = reader.get_entry_counts().total or 0
    reader.update_feeds(workers=32, scheduled=False)  # every feed, as the other pollers
    return {"new_entries": (reader.get_entry_counts().total or 0) - before}


def _poll_requests(state: Path, urls: list[str]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import feedparser
    import requests

    memory_path = state / "etags.json"
    memory: dict[str, dict[str, str]] = (
        json.loads(memory_path.read_text()) if memory_path.exists() else {}
    )
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("http://", adapter)

    def one(url: str) -> int:
        known = memory.get(url, {})
        headers = {"User-Agent": "bench/1"}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("modified"):
            headers["If-Modified-Since"] = known["modified"]
        response = session.get(url, headers=headers, timeout=(5, 20))
        if response.status_code == 304:
            return 0
        lowered = {k.lower(): v for k, v in response.headers.items()}
        lowered.setdefault("content-location", response.url)
        parsed = feedparser.parse(response.content, response_headers=lowered)
        memory[url] = {
            "etag": response.headers.get("ETag", ""),
            "modified": response.headers.get("Last-Modified", ""),
        }
        return len(parsed.entries)

    with ThreadPoolExecutor(max_workers=32) as pool:
        entries = sum(pool.map(one, urls))
    memory_path.write_text(json.dumps(memory))
    return {"entries": entries}


def _poll_main(kind: str, state: Path, urls_file: Path) -> None:
    urls = urls_file.read_text().split()
    result = _poll_reader(state, urls) if kind == "reader" else _poll_requests(state, urls)
    print(json.dumps(result))


# -- the parent -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--farm", type=Path, default=DEFAULT_FARM, help="folder of feedfarm.py")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=128, help="Vigie's global bound")
    parser.add_argument("--contenders", default="vigie,reader,requests")
    args = parser.parse_args(argv)

    script = farm_script(args.farm)
    if script is None:
        return 2
    contenders = [c for c in args.contenders.split(",") if c]
    if "reader" in contenders:
        try:
            import reader  # noqa: F401
        except ImportError:
            print("reader is not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
            contenders.remove("reader")

    work = Path(tempfile.mkdtemp(prefix="vigie-bench-collection-"))
    env = {**os.environ, **QUIET_ENV}
    children: list[subprocess.Popen[bytes]] = []
    mail: Any = None
    smtp_port = 0
    try:
        farm, farm_url = start_farm(
            script,
            work / "farm",
            feeds=args.feeds,
            entries=args.entries,
            latency_ms=args.latency_ms,
        )
        children.append(farm)
        urls_file = work / "farm" / "urls.txt"
        urls = urls_file.read_text().split()

        if "vigie" in contenders:
            children.append(start_prefect_server(env, work / "prefect"))
            from vigie.localservers import MailSink

            mail = MailSink(work / "inbox").__enter__()
            smtp_port = mail.port

        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in range(args.repeat):
            for contender in contenders:
                state = work / f"{contender}-{run}"
                state.mkdir()
                config = (
                    vigie_config(state, urls, smtp_port, args.concurrency)
                    if contender == "vigie"
                    else None
                )
                for poll in POLLS:
                    if poll == "mutated":
                        get_json(f"{farm_url}/_admin/mutate?frac=0.1&k=5", "POST")
                    get_json(f"{farm_url}/_admin/reset", "POST")
                    if config is not None:
                        argv_ = vigie_cycle_argv(config)
                    else:
                        argv_ = [sys.executable, __file__, "_poll", contender, str(state)]
                        argv_ += [str(urls_file)]
                    out = state / f"{poll}.out"
                    measured = measure(argv_, env, out)
                    stats = get_json(f"{farm_url}/_admin/stats")
                    by_status = {str(k): int(v) for k, v in stats.get("by_status", {}).items()}
                    served = by_status.get("200", 0)
                    measured["not_modified"] = by_status.get("304", 0)
                    measured["entries_per_s"] = served * args.entries / measured["wall_s"]
                    lines = out.read_text().strip().splitlines()
                    if contender == "vigie":
                        summary = json.loads(lines[-1])
                        measured["duration_s"] = summary["duration_s"]
                        measured["steps"] = summary["steps"]
                        measured["summary"] = {
                            k: summary.get(k)
                            for k in (
                                "sources_ok",
                                "sources_not_modified",
                                "entries_parsed",
                                "matched",
                                "new_mentions",
                            )
                        }
                        measured["summary"]["sources_failed"] = len(summary["sources_failed"])
                    results.setdefault((contender, poll), []).append(measured)
                    print(f"  {contender:8} {poll:9} wall {measured['wall_s']:6.1f} s", flush=True)

        print()
        print(
            f"{args.feeds} feeds x {args.entries} entries, {args.latency_ms} ms latency, "
            f"median of {args.repeat} run(s); load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        header = (
            f"{'contender':10} {'poll':10} {'wall s':>7} {'cycle s':>8} {'CPU s':>7} "
            f"{'peak MB':>8} {'entries/s':>10} {'304s':>6}"
        )
        print(header)
        print("-" * len(header))
        for contender in contenders:
            for poll in POLLS:
                rows = results[(contender, poll)]

                def med(key: str, rows: list[dict[str, Any]] = rows) -> float:
                    return statistics.median(float(r[key]) for r in rows)

                cycle = f"{med('duration_s'):8.2f}" if contender == "vigie" else f"{'':8}"
                print(
                    f"{contender:10} {poll:10} {med('wall_s'):7.2f} {cycle} {med('cpu_s'):7.2f} "
                    f"{med('peak_mb'):8.0f} {med('entries_per_s'):10.0f} "
                    f"{med('not_modified'):6.0f}"
                )
        if "vigie" in contenders:
            print("\nVigie's cycle, per step (s, median):")
            for poll in POLLS:
                rows = results[("vigie", poll)]
                steps = rows[0]["steps"]
                split = ", ".join(
                    f"{name} {statistics.median(r['steps'].get(name, 0.0) for r in rows):.2f}"
                    for name in steps
                )
                print(f"  {poll:10} {split}")
                print(f"  {'':10} {rows[-1]['summary']}")
        return 0
    finally:
        if mail is not None:
            mail.__exit__(None, None, None)
        stop_all(children)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_poll":
        _poll_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
