"""What the benchmarks that run real watch cycles share: the local feed farm and a Prefect
server in their own process groups, a Vigie configuration over the farm's feeds, and the
wall time, CPU time and peak memory of a command's whole process tree.

The feed farm is `shared/bench/feedfarm.py` (outside the repository; `DEFAULT_FARM`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigie.localservers import free_port

DEFAULT_FARM = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench"
# The farm's organisations: one of them is the watched organisation, as a crisis cell would.
WATCH_QUERY = '"Acme Renewables" OR "Énergies Acmé"'
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def get_json(url: str, method: str = "GET", body: Any = None) -> Any:
    """GET (or POST, with `body` as JSON) a URL and decode its JSON answer."""
    data = None if method == "GET" else json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def wait_for(url: str, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} did not answer at {url} within {timeout_s:.0f} s")


def farm_script(farm: Path) -> Path | None:
    """feedfarm.py in the folder `farm`, or None (with one line on stderr) when it is not there."""
    script = (farm / "feedfarm.py").resolve()
    if script.exists():
        return script
    print(f"the feed farm is not at {script} (pass --farm FOLDER)", file=sys.stderr)
    return None


def start_farm(
    script: Path, outdir: Path, *, feeds: int, entries: int, latency_ms: int, days: float = 7.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Serve `feeds` generated feeds of `entries` entries published over the last `days`;
    return the process and the farm's base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "serve",
            f"--feeds={feeds}",
            f"--entries={entries}",
            f"--latency-ms={latency_ms}",
            f"--days={days}",
            f"--port={port}",
            "--seed=1",
            f"--outdir={outdir}",
            "--backlog=1024",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/_admin/stats", 300, "the feed farm")
    return process, url


def start_prefect_server(env: dict[str, str], home: Path) -> subprocess.Popen[bytes]:
    """A Prefect server on a free port, its database under `home`; sets PREFECT_HOME and
    PREFECT_API_URL in `env` for the processes started with it."""
    port = free_port()
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            *("server", "start", "--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(f"http://127.0.0.1:{port}/api/health", 180, "the Prefect server")
    return process


def stop_all(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop the process groups started here, the last started first."""
    for child in reversed(children):
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def vigie_config(
    state: Path,
    urls: Sequence[str],
    smtp_port: int,
    concurrency: int,
    *,
    query: str = WATCH_QUERY,
    extra: str = "",
) -> Path:
    """A configuration watching the farm's `urls` (sources `feed-00000`...), its warehouse in
    `state`, its emails to a sink on `smtp_port`; `extra` is appended as it is."""
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
query = '{query}'

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
# Every feed at every poll, as the peers poll them: the bench compares the cost of a poll.
adaptive_polling = false
concurrency = {concurrency}
per_host = {concurrency}
{extra}"""
    path = state / "vigie.toml"
    path.write_text(text, encoding="utf-8")
    return path


def vigie_cycle_argv(config: Path) -> list[str]:
    """`vigie run --once --json` with this configuration, as a command."""
    return [sys.executable, "-m", "cli.main", "--config", str(config), "run", "--once", "--json"]


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants, now (Linux /proc)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue  # the process ended meanwhile
        found.append(current)
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, summed: pages a fork shares
    with its parent count once per process."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            continue
    return total / 2**20


def tree_pss_mb(pid: int) -> float:
    """Proportional memory (PSS) of a process and all its descendants: a page shared by n
    processes counts 1/n in each, so the sum is what the tree holds (a fork server and the
    runs it forks share their imported modules)."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def measure(argv: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run argv in its own process; wall, CPU (children included) and peak memory of that tree.

    `peak_mb` is the larger of the biggest single process (wait4's ru_maxrss) and the RSS
    summed over the process and its children (parsing workers); `peak_pss_mb` the PSS summed
    over them (shared pages counted once); both sampled every 20 ms while it runs.
    """
    started = time.monotonic()
    peak_tree = 0.0
    peak_pss = 0.0
    with out.open("wb") as stdout:
        process = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree, peak_pss
            while not stop.wait(0.02):
                peak_tree = max(peak_tree, tree_rss_mb(process.pid))
                peak_pss = max(peak_pss, tree_pss_mb(process.pid))

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
        "peak_pss_mb": peak_pss,
    }
