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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FARM = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench"
POLLS = ("first", "unchanged", "mutated")
# The farm's organisations: one of them is the watched organisation, as a crisis cell would.
WATCH_QUERY = '"Acme Renewables" OR "Énergies Acmé"'
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _wait_for(url: str, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} did not answer at {url} within {timeout_s:.0f} s")


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, now (Linux /proc)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue  # the process ended meanwhile
    return total / 2**20


def _measure(argv: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run argv in its own process; wall, CPU (children included) and peak RSS of that tree.

    The peak is the larger of the biggest single process (wait4's ru_maxrss) and the sum over
    the process and its children (parsing workers), sampled every 20 ms while it runs.
    """
    started = time.monotonic()
    peak_tree = 0.0
    with out.open("wb") as stdout:
        process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not stop.wait(0.02):
                peak_tree = max(peak_tree, _tree_rss_mb(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stderr_bytes = process.stderr.read() if process.stderr else b""
        _, status, usage = os.wait4(process.pid, 0)
        stop.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    stderr = stderr_bytes.decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({process.returncode}):\n{stderr[-3000:]}")
    # wait4 counts the process and the children it waited for (ru_maxrss: the largest).
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": max(usage.ru_maxrss / 1024, peak_tree),
    }


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


def _vigie_config(state: Path, urls: Sequence[str], smtp_port: int, concurrency: int) -> Path:
    sources = "".join(
        f'[[sources]]\nname = "feed-{i:05d}"\nurl = "{url}"\nplatform = "news"\ntier = 3\n\n'
        for i, url in enumerate(urls)
    )
    text = f"""[organisation]
name = "Acme Renewables"
language = "en"

[warehouse]
path = "{state / "vigie.duckdb"}"

[[watch]]
name = "acme"
query = '{WATCH_QUERY}'

{sources}
[email]
host = "127.0.0.1"
port = {smtp_port}
sender = "vigie@acme.example"
security = "none"
timeout_s = 5

[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@acme.example"
role = "lead"
level = 1

[collection]
concurrency = {concurrency}
per_host = {concurrency}
"""
    path = state / "vigie.toml"
    path.write_text(text, encoding="utf-8")
    return path


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

    farm_script = (args.farm / "feedfarm.py").resolve()
    if not farm_script.exists():
        print(
            f"bench_collection: the feed farm is not at {farm_script} (pass --farm FOLDER)",
            file=sys.stderr,
        )
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
        port = _free_port()
        farm_url = f"http://127.0.0.1:{port}"
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(farm_script),
                    "serve",
                    f"--feeds={args.feeds}",
                    f"--entries={args.entries}",
                    f"--latency-ms={args.latency_ms}",
                    f"--port={port}",
                    "--seed=1",
                    f"--outdir={work / 'farm'}",
                    "--backlog=1024",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        _wait_for(f"{farm_url}/_admin/stats", 180, "the feed farm")
        urls_file = work / "urls.txt"
        with urllib.request.urlopen(f"{farm_url}/urls.txt", timeout=30) as response:
            urls_file.write_bytes(response.read())
        urls = urls_file.read_text().split()

        if "vigie" in contenders:
            prefect_port = _free_port()
            env["PREFECT_HOME"] = str(work / "prefect")
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
            children.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("prefect")),
                        "server",
                        "start",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(prefect_port),
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            _wait_for(f"http://127.0.0.1:{prefect_port}/api/health", 180, "the Prefect server")
            from vigie.localservers import MailSink

            mail = MailSink(work / "inbox").__enter__()
            smtp_port = mail.port

        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in range(args.repeat):
            for contender in contenders:
                state = work / f"{contender}-{run}"
                state.mkdir()
                config = (
                    _vigie_config(state, urls, smtp_port, args.concurrency)
                    if contender == "vigie"
                    else None
                )
                for poll in POLLS:
                    if poll == "mutated":
                        _get_json(f"{farm_url}/_admin/mutate?frac=0.1&k=5", "POST")
                    _get_json(f"{farm_url}/_admin/reset", "POST")
                    if contender == "vigie":
                        argv_ = [sys.executable, "-m", "vigie.cli", "--config", str(config)]
                        argv_ += ["run", "--once", "--json"]
                    else:
                        argv_ = [sys.executable, __file__, "_poll", contender, str(state)]
                        argv_ += [str(urls_file)]
                    out = state / f"{poll}.out"
                    measured = _measure(argv_, env, out)
                    stats = _get_json(f"{farm_url}/_admin/stats")
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
        for child in reversed(children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_poll":
        _poll_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
