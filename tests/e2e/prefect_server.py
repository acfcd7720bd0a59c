"""A real `prefect server start` for end-to-end tests, and the processes that talk to it.

`running_prefect_server()` starts the server on a free port of 127.0.0.1 with a temporary
PREFECT_HOME (SQLite) and telemetry off, in its own session (so SIGTERM reaches it: STACK.md
gotcha 3), waits for `/api/health`, yields a `PrefectServer` (API URL, and the environment to
give every client), and stops it by PID: SIGTERM, then SIGKILL after a timeout.
`PrefectServer.start(...)` starts other processes the same way (`vigie serve`, `prefect worker
start`) with short polling intervals, stopped with the server; `PrefectServer.run(...)` runs a
short command (`prefect deploy`). The session-scoped `prefect_server` fixture (registered for the
whole suite by tests/conftest.py's `pytest_plugins`) shares one server: request it by name, do
not import it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vigie import TELEMETRY_OFF
from vigie.localservers import free_port

BIN = Path(sys.executable).parent
# Polling every 2 s instead of 10 s: a manual run completes in about 7 s (STACK.md gotcha 9).
FAST_POLLING = {"PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
# The server's SQLite database in its PREFECT_HOME (PREFECT_SERVER_DATABASE_CONNECTION_URL's
# default).
DATABASE = "prefect.db"
# Variables of the outer test process that must not leak into the server or its clients.
_ISOLATED = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "VIGIE_CONFIG")


@dataclass
class ManagedProcess:
    """A process started in its own session, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after `timeout_s`; the return code."""
        return stop_process(self.process, timeout_s)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return int(process.returncode)


def _popen(
    name: str, command: Sequence[str], env: Mapping[str, str], cwd: Path, logs: Path
) -> ManagedProcess:
    log = logs / f"{name}-{time.time_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name, process, log)


@dataclass
class PrefectServer:
    """A running server: its API URL, the environment for its clients, what it started."""

    api_url: str
    env: dict[str, str]
    home: Path
    server: ManagedProcess
    children: list[ManagedProcess] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
    ) -> ManagedProcess:
        """Start `command` against this server (fast polling), stopped with the server."""
        merged = {**self.env, **FAST_POLLING, "PWD": str(cwd), **(env or {})}
        child = _popen(name, command, merged, cwd, self.home)
        self.children.append(child)
        return child

    def run(
        self, command: Sequence[str], *, cwd: Path, timeout_s: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command (`prefect deploy ...`) against this server."""
        return subprocess.run(
            list(command),
            cwd=cwd,
            # prefect.yaml's pull step reads {{ $PWD }}, which a shell would set to the folder.
            env={**self.env, "PWD": str(cwd)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )


def client_env(api_url: str, home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every process that talks to the server: telemetry off, the API URL
    always set (else each would start its own temporary server: STACK.md gotcha 2)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _ISOLATED}
    env.update(TELEMETRY_OFF)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # A redeploy with no schedules clears the old ones (STACK.md gotcha 7).
        PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY="true",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def wait_healthy(api_url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"prefect server not healthy after {timeout_s:.0f} s")


def migrated_database() -> Path:
    """An empty Prefect database with every migration applied, made once for this machine's
    Prefect version and copied into each new server's home: migrating a new database is about
    half a server's cold start (8 of 14 s of CPU), paid by every server of the suite otherwise.
    The test workers share it; the first makes it, under a lock, the others wait for it."""
    import prefect

    folder = Path(tempfile.gettempdir()) / f"vigie-prefect-db-{prefect.__version__}-{os.getuid()}"
    template = folder / DATABASE
    if template.exists():
        return template
    folder.mkdir(exist_ok=True)
    with (folder / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            with tempfile.TemporaryDirectory(dir=folder) as work:
                env = client_env("http://127.0.0.1:9/api", Path(work))
                done = subprocess.run(
                    [str(BIN / "prefect"), "server", "database", "upgrade", "-y"],
                    env=env,
                    cwd=work,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if done.returncode != 0 or not (Path(work) / DATABASE).exists():
                    raise RuntimeError(f"prefect server database upgrade: {done.stderr[-3000:]}")
                # SQLite folds its write-ahead log into the file when the last connection
                # closes: the file alone is the whole database, moved in place at once.
                os.replace(Path(work) / DATABASE, template)
    return template


@contextlib.contextmanager
def running_prefect_server(
    *,
    startup_timeout_s: float = 180,
    home: Path | None = None,
    port: int | None = None,
    server_env: Mapping[str, str] | None = None,
) -> Iterator[PrefectServer]:
    """Start `prefect server start` on a free port with a temporary SQLite home; stop it (and
    everything started through it) by PID at the end. With `home` and `port`, a server is
    restarted on the same database and address; `server_env` is added to the server's own
    environment only (its clients' is `PrefectServer.env`)."""
    with tempfile.TemporaryDirectory(prefix="vigie-prefect-") as folder:
        home = home or Path(folder)
        port = port or free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = client_env(api_url, home)
        if not (home / DATABASE).exists():
            shutil.copyfile(migrated_database(), home / DATABASE)
        own_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        # The UI calls the API at PREFECT_UI_API_URL, by default port 4200 whatever --port says.
        own_env["PREFECT_UI_API_URL"] = api_url
        own_env.update(server_env or {})
        server = _popen(
            "server",
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            own_env,
            home,
            home,
        )
        running = PrefectServer(api_url, env, home, server)
        try:
            try:
                wait_healthy(api_url, server.process, startup_timeout_s)
            except (RuntimeError, TimeoutError) as err:
                raise RuntimeError(f"{err}\n{server.output()[-3000:]}") from err
            yield running
        finally:
            for child in reversed(running.children):
                child.stop()
            server.stop()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    """One real `prefect server start` for the whole session (cold start: 8 to 70 s)."""
    with running_prefect_server() as server:
        yield server
