"""Benchmark: polling a farm of 1,000 local feeds, Vigie's cycle against two other pollers.

Starts the feed farm of `shared/bench/feedfarm.py` (every request waits --latency-ms; ETag and
Last-Modified, 304, gzip) and a Prefect server, then for each contender runs three polls, each
in its own process: a first poll with fresh state, an unchanged re-poll, and a poll after
`feedfarm.py ctl mutate --frac 0.1 --k 5`. Contenders:

  vigie     `vigie run --once --json` on a generated config (the farm's URLs, a temporary
            warehouse, a watch query that matches part of the farm's content); its summary's
            duration_s and per-step times are printed too
  served    the same config under `vigie serve` (started once, before the first poll, on a
            prefect.yaml holding only the watch-cycle deployment, manual): each poll is a run
            of that deployment created through the Prefect API. Its "cycle s" is the summary's
            duration_s (read from the warehouse); its wall time runs from the run's Pending
            state to its end (the runner's process start and imports included, the runner's
            poll for new runs not); its CPU and peak memory are those of the serve process tree
  reader    the `reader` library's update_feeds(workers=32) (optional extra `bench`)
  requests  requests + 32 threads + feedparser, remembering ETag and Last-Modified

Per poll: wall time of the process, its CPU time (user + system, children included), its peak
memory twice: RSS summed over the process tree (a page a fork shares with its parent counts in
each: the served tree's fork server and run, the parse workers) and PSS (each shared page
counted once, what the tree really holds), entries per second (entries of the feeds served
with 200 / wall time) and 304 answers, from the farm's counters (reset before every poll).
Medians over --repeat runs. Figures only.

The summary table gives each poll's latency floor (feeds x latency / concurrency: the time
the requests need with --concurrency in flight) and each figure's ratio to it.

    python bench/bench_collection.py [--feeds 1000] [--repeat 1] [--contenders vigie,served,reader]
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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    DEFAULT_FARM,
    QUIET_ENV,
    farm_script,
    get_json,
    measure,
    process_tree,
    start_farm,
    start_prefect_server,
    stop_all,
    tree_pss_mb,
    tree_rss_mb,
    vigie_config,
    vigie_cycle_argv,
)

POLLS = ("first", "unchanged", "mutated")
SERVED_YAML = """\
# Only the watch cycle, manual: the bench creates each run (bench_collection.py).
deployments:
  - name: watch-cycle
    entrypoint: {entrypoint}
    parameters:
      config_path: vigie.toml
    concurrency_limit: 1
"""
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


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


# -- the served contender: one `vigie serve`, a run of its watch-cycle deployment per poll ---


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process tree, its reaped children included."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / os.sysconf("SC_CLK_TCK")


def _api(url: str, method: str = "GET", body: Any = None) -> Any:
    """get_json on the Prefect API, again after a 503 (a busy SQLite server: STACK.md gotcha 5)."""
    import urllib.error

    for _ in range(30):
        try:
            return get_json(url, method, body)
        except urllib.error.HTTPError as err:
            if err.code != 503:
                raise
            time.sleep(1)
    return get_json(url, method, body)


def start_served(config: Path, env: dict[str, str], state: Path) -> subprocess.Popen[bytes]:
    """`vigie serve` on a prefect.yaml of the watch cycle alone, once its deployment exists."""
    entrypoint = Path(__file__).resolve().parents[1] / "flows" / "watch_cycle.py"
    prefect_yaml = state / "prefect.yaml"
    prefect_yaml.write_text(SERVED_YAML.format(entrypoint=f"{entrypoint}:watch_cycle"))
    command = [sys.executable, "-m", "cli.main", "--config", str(config), "serve"]
    process = subprocess.Popen(
        [*command, "--prefect-yaml", str(prefect_yaml)],
        # The runner asks for new runs every second (10 s by default): the wait is not timed,
        # but a shorter one keeps the bench short.
        env={**env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        stdout=(state / "serve.out").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = env["PREFECT_API_URL"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vigie serve ended: {(state / 'serve.out').read_text()[-2000:]}")
        try:
            _api(f"{api}/deployments/name/watch-cycle/watch-cycle")
            time.sleep(2)  # the runner starts polling once its deployments are applied
            return process
        except OSError:
            time.sleep(0.5)
    raise SystemExit("vigie serve did not register its deployment within 180 s")


def poll_served(
    process: subprocess.Popen[bytes], env: dict[str, str], state: Path
) -> dict[str, Any]:
    """Create one run of the served watch cycle and wait for its end: its Pending-to-end time,
    the serve tree's CPU and peak memory meanwhile, and the cycle's summary."""
    import duckdb

    api = env["PREFECT_API_URL"]
    deployment = _api(f"{api}/deployments/name/watch-cycle/watch-cycle")
    members = len(process_tree(process.pid))
    cpu_before = _tree_cpu_s(process.pid)
    run = _api(f"{api}/deployments/{deployment['id']}/create_flow_run", "POST", {})
    peak = peak_pss = 0.0
    while True:
        peak = max(peak, tree_rss_mb(process.pid))
        peak_pss = max(peak_pss, tree_pss_mb(process.pid))
        current = _api(f"{api}/flow_runs/{run['id']}")
        if current["state_type"] in FINAL_STATES:
            break
        if process.poll() is not None:
            raise SystemExit(f"vigie serve ended: {(state / 'serve.out').read_text()[-2000:]}")
        time.sleep(0.05)
    deadline = time.monotonic() + 10  # the run's process is reaped: its CPU is counted
    while len(process_tree(process.pid)) > members and time.monotonic() < deadline:
        time.sleep(0.05)
    if current["state_type"] != "COMPLETED":
        output = (state / "serve.out").read_text()[-3000:]
        raise SystemExit(
            f"the served run ended {current['state_type']}; vigie serve said:\n{output}"
        )
    states = _api(f"{api}/flow_run_states/?flow_run_id={run['id']}")
    pending = min(s["timestamp"] for s in states if s["type"] == "PENDING")
    ended = max(s["timestamp"] for s in states if s["type"] == "COMPLETED")
    wall = _seconds_between(pending, ended)
    with duckdb.connect(str(state / "vigie.duckdb"), read_only=True) as con:
        row = con.execute("SELECT summary FROM cycles ORDER BY started_at DESC LIMIT 1").fetchone()
    assert row is not None
    return {
        "wall_s": wall,
        "cpu_s": _tree_cpu_s(process.pid) - cpu_before,
        "peak_mb": peak,
        "peak_pss_mb": peak_pss,
        "summary_line": row[0],
    }


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


# -- the parent -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--farm", type=Path, default=DEFAULT_FARM, help="folder of feedfarm.py")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="Vigie's bound, as reader's 32 workers"
    )
    parser.add_argument("--contenders", default="vigie,served,reader,requests")
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
    vigies = [c for c in contenders if c in ("vigie", "served")]

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

        if vigies:
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
                    if contender in vigies
                    else None
                )
                served = None
                if contender == "served" and config is not None:
                    served = start_served(config, env, state)
                    children.append(served)
                for poll in POLLS:
                    if poll == "mutated":
                        get_json(f"{farm_url}/_admin/mutate?frac=0.1&k=5", "POST")
                    get_json(f"{farm_url}/_admin/reset", "POST")
                    out = state / f"{poll}.out"
                    if served is not None:
                        measured = poll_served(served, env, state)
                        out.write_text(measured.pop("summary_line") + "\n")
                    else:
                        if config is not None:
                            argv_ = vigie_cycle_argv(config)
                        else:
                            argv_ = [sys.executable, __file__, "_poll", contender, str(state)]
                            argv_ += [str(urls_file)]
                        measured = measure(argv_, env, out)
                    stats = get_json(f"{farm_url}/_admin/stats")
                    by_status = {str(k): int(v) for k, v in stats.get("by_status", {}).items()}
                    fetched = by_status.get("200", 0)
                    measured["not_modified"] = by_status.get("304", 0)
                    measured["entries_per_s"] = fetched * args.entries / measured["wall_s"]
                    lines = out.read_text().strip().splitlines()
                    if contender in vigies:
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
                if served is not None:
                    stop_all([served])
                    children.remove(served)

        print()
        print(
            f"{args.feeds} feeds x {args.entries} entries, {args.latency_ms} ms latency, "
            f"{args.concurrency} in flight, median of {args.repeat} run(s); load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        header = (
            f"{'contender':10} {'poll':10} {'wall s':>7} {'cycle s':>8} {'CPU s':>7} "
            f"{'RSS MB':>8} {'PSS MB':>8} {'entries/s':>10} {'304s':>6}"
        )
        print(header)
        print("-" * len(header))

        def med(contender: str, poll: str, key: str) -> float:
            return statistics.median(float(r[key]) for r in results[(contender, poll)])

        for contender in contenders:
            for poll in POLLS:
                cycle = (
                    f"{med(contender, poll, 'duration_s'):8.2f}"
                    if contender in vigies
                    else f"{'':8}"
                )
                print(
                    f"{contender:10} {poll:10} {med(contender, poll, 'wall_s'):7.2f} {cycle} "
                    f"{med(contender, poll, 'cpu_s'):7.2f} {med(contender, poll, 'peak_mb'):8.0f} "
                    f"{med(contender, poll, 'peak_pss_mb'):8.0f} "
                    f"{med(contender, poll, 'entries_per_s'):10.0f} "
                    f"{med(contender, poll, 'not_modified'):6.0f}"
                )
        floor = args.feeds * args.latency_ms / 1000 / args.concurrency
        print(
            f"\nAgainst the latency floor ({args.feeds} x {args.latency_ms} ms / "
            f"{args.concurrency} = {floor:.2f} s): Vigie's cycle s (x floor), reader's wall s "
            "(x floor), and reader / Vigie"
        )
        for poll in POLLS:
            cells = [f"  {poll:10}"]
            for contender in vigies:
                seconds = med(contender, poll, "duration_s")
                cells.append(f"{contender} {seconds:6.2f} s ({seconds / floor:4.2f}x)")
                if contender == "served":  # from Pending: the run's process and imports too
                    seconds = med(contender, poll, "wall_s")
                    cells.append(f"served run {seconds:6.2f} s ({seconds / floor:4.2f}x)")
            if "reader" in contenders:
                peer = med("reader", poll, "wall_s")
                cells.append(f"reader {peer:6.2f} s ({peer / floor:4.2f}x)")
                cells += [f"reader/{c} {peer / med(c, poll, 'duration_s'):4.2f}" for c in vigies]
            print("  ".join(cells))
        for contender in vigies:
            print(f"\n{contender}: the cycle, per step (s, median):")
            for poll in POLLS:
                rows = results[(contender, poll)]
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
