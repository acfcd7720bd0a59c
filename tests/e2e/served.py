"""Helpers for tests that serve Vigie's deployments on a real `prefect server start`.

A copy of the project (prefect.yaml and flows/) in a temporary folder, so nothing is written into
the repository; `vigie serve` started through the `prefect_server` fixture (stopped by PID with
it); a wait until every deployment is served with the test's configuration; a client of that
server; the scenario's sources as `write_config` takes them; a wait for an email by subject.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.e2e.prefect_server import ManagedProcess, PrefectServer
from vigie import scenario

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import DeploymentResponse

    from vigie.localservers import MailSink

ROOT = Path(__file__).resolve().parents[2]
VIGIE = str(Path(sys.executable).parent / "vigie")


def copy_project(folder: Path) -> Path:
    """A copy of what `prefect deploy` and `vigie serve` read: prefect.yaml and the flows."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "prefect.yaml", folder / "prefect.yaml")
    shutil.copytree(ROOT / "flows", folder / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@contextmanager
def prefect_client(server: PrefectServer) -> Iterator[SyncPrefectClient]:
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
        get_client(sync_client=True) as client,
    ):
        yield client


def scenario_sources(urls: Mapping[str, str]) -> list[dict[str, object]]:
    """The bundled scenario's sources, published at `urls`, as `write_config` takes them."""
    return [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]


def start_serve(
    server: PrefectServer,
    name: str,
    config: Path,
    project: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """`vigie serve` of the project's prefect.yaml with `config`, stopped with the server."""
    prefect_yaml = str(project / "prefect.yaml")
    command = [VIGIE, "--config", str(config), "serve", "--prefect-yaml", prefect_yaml]
    return server.start(name, command, cwd=cwd, env=env)


def wait_served(
    client: SyncPrefectClient,
    config: Path,
    names: Iterable[str],
    serve: ManagedProcess,
    timeout_s: float = 120,
) -> dict[str, DeploymentResponse]:
    """The deployments `names`, once `serve` serves them all with `config`, unpaused."""
    wanted = set(names)
    deadline = time.monotonic() + timeout_s
    while True:
        assert serve.process.poll() is None, serve.output()[-3000:]
        served = {
            d.name: d
            for d in client.read_deployments()
            if d.name in wanted and d.parameters.get("config_path") == str(config) and not d.paused
        }
        if set(served) == wanted:
            return served
        if time.monotonic() > deadline:
            missing = sorted(wanted - set(served))
            raise AssertionError(f"not served after {timeout_s:.0f} s: {missing}\n{serve.output()}")
        time.sleep(1)


def wait_final(
    client: SyncPrefectClient, run_id: UUID, process: ManagedProcess, timeout_s: float = 240
) -> FlowRun:
    """The flow run once its state is final, while `process` (worker or serve) runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        assert process.process.poll() is None, process.output()[-3000:]
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish: {run.state}\n{process.output()[-3000:]}")


def wait_mail(sink: MailSink, tag: str, timeout_s: float = 60) -> list[Any]:
    """The messages whose subject contains `tag`, once there is one ([] after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in sink.messages() if tag in str(m["Subject"])]
        if found:
            return found
        time.sleep(0.5)
    return []
