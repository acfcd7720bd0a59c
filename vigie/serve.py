"""`vigie serve`: every deployment of prefect.yaml, with its schedules, parameters and
description, served by one process (Prefect's runner); no work pool or worker needed.

The flows are loaded from prefect.yaml's entrypoints in the project folder (the folder of
prefect.yaml, which becomes the working directory), so whatever another branch appends to
prefect.yaml is served as well. `config_path` is set to the configuration's absolute path.
Requires `PREFECT_API_URL` (STACK.md gotcha 2: without it every run would start its own
temporary server). SIGTERM or SIGINT stop it; Prefect then pauses the served deployments until
the next start (STACK.md gotcha 8).

Prefect's runner starts each run in a fresh interpreter (multiprocessing's spawn), which imports
Prefect, the flows and Great Expectations again: seconds of CPU per watch cycle. Served runs
start instead as forks of a fork server (multiprocessing's forkserver) that imported them once
(`SERVED_PRELOAD` in cli/watch.py): each run is still a process of its own, forked from a
process with no thread and no connection open, so nothing one run does outlives it.
"""

from __future__ import annotations

import contextlib
import copyreg
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from vigie.deployments import DeploymentSpec, ScheduleSpec
from vigie.errors import ConfigError, PrefectUnreachable, one_line

if TYPE_CHECKING:
    from uuid import UUID

    from prefect import Flow
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.deployments.runner import RunnerDeployment

API_URL_ENV = "PREFECT_API_URL"


def require_api_url(env: Mapping[str, str] | None = None) -> str:
    """The Prefect API URL, or a one-line error saying how to set it."""
    env = os.environ if env is None else env
    url = (env.get(API_URL_ENV) or "").strip()
    if not url:
        raise ConfigError(
            f"{API_URL_ENV} is not set: start a Prefect server (prefect server start) and "
            f"export {API_URL_ENV}=http://127.0.0.1:4200/api"
        )
    return url


def check_api_answers(env: Mapping[str, str] | None = None, *, timeout_s: float = 5.0) -> None:
    """When PREFECT_API_URL is set, check that its server answers, so that a server left
    stopped is one line saying what to do rather than a traceback from inside a flow run."""
    import requests

    env = os.environ if env is None else env
    url = (env.get(API_URL_ENV) or "").strip()
    if not url:
        return  # Prefect starts a temporary server of its own
    try:
        requests.get(f"{url.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
    except (requests.RequestException, ValueError) as err:
        raise PrefectUnreachable(
            f"the Prefect API at {url} does not answer ({type(err).__name__}): start it "
            f"(`prefect server start`), or unset {API_URL_ENV} to run with a temporary server"
        ) from err


def _schedule(spec: ScheduleSpec) -> DeploymentScheduleCreate:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    zone: dict[str, Any] = {"timezone": spec.timezone} if spec.timezone else {}
    schedule: CronSchedule | IntervalSchedule | RRuleSchedule
    if spec.cron is not None:
        schedule = CronSchedule(cron=spec.cron, **zone)
    elif spec.interval_s is not None:
        schedule = IntervalSchedule(interval=timedelta(seconds=spec.interval_s), **zone)
    else:
        schedule = RRuleSchedule(rrule=str(spec.rrule), **zone)
    return DeploymentScheduleCreate(
        schedule=schedule, active=spec.active, parameters=dict(spec.parameters)
    )


def runner_deployments(
    specs: Sequence[DeploymentSpec], config_path: Path
) -> list[RunnerDeployment]:
    """One runner deployment per prefect.yaml entry; entrypoints are read from the current
    folder (the project folder)."""
    from prefect.events import DeploymentTriggerTypes
    from prefect.flows import load_flow_from_entrypoint
    from pydantic import TypeAdapter

    triggers: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)  # type: ignore[arg-type]
    built: list[RunnerDeployment] = []
    for spec in specs:
        try:
            flow: Flow[..., Any] = load_flow_from_entrypoint(spec.entrypoint)
        except Exception as err:  # an import error in a flow module, a wrong name...
            raise ConfigError(
                f"prefect.yaml: {spec.name}: cannot load {spec.entrypoint}: "
                f"{one_line(err, 300)}; run `vigie serve` from the project folder "
                "(where flows/ is) with Vigie installed in this environment"
            ) from err
        parameters: dict[str, Any] = dict(spec.parameters)
        served_config = {"config_path": str(config_path.resolve())}
        if "config_path" in flow.parameters.properties:
            parameters.update(served_config)
        deployment = cast(
            "RunnerDeployment",
            flow.to_deployment(
                name=spec.name,
                description=spec.description or None,
                parameters=parameters,
                schedules=[_schedule(s) for s in spec.schedules],
                concurrency_limit=spec.concurrency_limit,
                tags=list(spec.tags) or None,
                triggers=[
                    triggers.validate_python(
                        {
                            "name": f"{spec.name}__automation_{i}",
                            **_with_served_config(dict(trigger), served_config),
                        }
                    )
                    for i, trigger in enumerate(spec.triggers, 1)
                ]
                or None,
            ),
        )
        built.append(deployment)
    return built


def _with_served_config(trigger: dict[str, Any], served: dict[str, str]) -> dict[str, Any]:
    """A trigger's own parameters name a config too: the run it starts reads the served one."""
    parameters = trigger.get("parameters")
    if isinstance(parameters, dict) and "config_path" in parameters:
        return {**trigger, "parameters": {**parameters, **served}}
    return trigger


def take_over(deployments: Sequence[RunnerDeployment]) -> list[str]:
    """Delete the deployments of the same names that `prefect deploy` put on a work pool.

    A served deployment updates an existing one in place but keeps its storage fields, so a
    deployment first made by `prefect deploy` would crash every served run (no code path).
    Their past runs stay; their future scheduled runs go, and serve schedules its own.
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    replaced = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            full_name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(full_name)
            except ObjectNotFound:
                continue
            if existing.work_pool_name:
                client.delete_deployment(existing.id)
                replaced.append(f"{full_name} (work pool {existing.work_pool_name})")
    return replaced


def start_runs_as_forks(preload: Sequence[str]) -> None:
    """Have Prefect's runner start each flow run as a fork of a fork server that imported
    `preload`, rather than as a fresh interpreter that imports everything again.

    Prefect starts a served run with `run_flow_in_subprocess`, which asks multiprocessing for
    its spawn context; it is given the forkserver context instead, the rest of Prefect's code
    (environment, settings, cancellation) unchanged. The fork server starts now, importing
    `preload` while the deployments are registered, not during the first run.
    """
    import multiprocessing
    import multiprocessing.forkserver
    from types import SimpleNamespace

    import prefect.flow_engine as engine

    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(list(preload))

    def get_context(method: str | None = None) -> Any:
        return forkserver if method == "spawn" else multiprocessing.get_context(method)

    # Only the name run_flow_in_subprocess reads; the module's other uses are annotations.
    engine.multiprocessing = SimpleNamespace(  # type: ignore[attr-defined,assignment]
        get_context=get_context, context=multiprocessing.context
    )
    multiprocessing.forkserver.ensure_running()


def serve_deployments(
    deployments: Sequence[RunnerDeployment], *, limit: int | None, preload: Sequence[str] = ()
) -> None:
    """Serve until SIGTERM or SIGINT, each run forked from a fork server that imported the
    modules `preload` names (`start_runs_as_forks`).

    As `prefect.serve` does, but the runner holds each deployment's flow, as `Runner.add_flow`
    leaves it: a run of a flow the runner holds starts through `run_flow_in_subprocess` (a
    fork, above), where one it does not hold starts `python -m prefect.engine`, a fresh
    interpreter whatever the start method.
    """
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    def stop(signum: int, frame: FrameType | None) -> None:
        # Prefect's runner stops on KeyboardInterrupt; SIGTERM (systemd, docker stop, kill)
        # gets the same clean shutdown.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    start_runs_as_forks(preload)
    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        deployment_id = cast("UUID", runner.add_deployment(deployment))
        flow = _importable_flow(deployment.entrypoint or "")
        if flow is not None:
            runner._deployment_registry.register_flow(deployment_id, flow)
    pickle_flows_by_name()
    # Stopped, the runner has ended its runs and paused the deployments.
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
        asyncio.run(runner.start())


def end_run_processes(grace_s: float = 5.0) -> list[int]:
    """End the processes of served runs still alive when serving stopped (a second Ctrl-C cuts
    Prefect's own shutdown short): SIGTERM, then SIGKILL after `grace_s`; their pids.

    The runner waits for each run's process in a thread of its own, which the interpreter
    waits for at exit: a run left alive (a watch cycle held by a slow source, a paused run)
    would keep `vigie serve` from ever exiting. Their runs are closed in the API beforehand.
    """
    import multiprocessing
    import time

    left = multiprocessing.active_children()
    for process in left:
        process.terminate()
    deadline = time.monotonic() + grace_s
    for process in left:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
    return [process.pid for process in left if process.pid is not None]


def _flow_named(module: str, name: str) -> Flow[..., Any]:
    """The flow `name` of `module`, imported (already, in a served run's fork)."""
    import importlib

    flow: Flow[..., Any] = getattr(importlib.import_module(module), name)
    return flow


def pickle_flows_by_name() -> None:
    """From now on, this process pickles a flow of an importable module by its name
    (`_reduce_flow`), as Prefect's runner does to start a served run."""
    from prefect import Flow

    copyreg.pickle(Flow, _reduce_flow)


def _reduce_flow(flow: Flow[..., Any]) -> Any:
    """Pickle a flow of an importable module by its name, as a function is.

    Pickled as an object, a flow takes its function by value with only the globals its code
    reads: the names its annotations give (`ConfigPath`) are lost, and the run's parameters
    cannot be validated.
    """
    module, name = flow.fn.__module__, flow.fn.__name__
    if getattr(sys.modules.get(module), name, None) is flow:
        return _flow_named, (module, name)
    return flow.__reduce_ex__(4)


def _importable_flow(entrypoint: str) -> Flow[..., Any] | None:
    """The flow of `entrypoint` (`path/to/module.py:name`) imported by its module's name, or
    None when the file is no importable module.

    A flow the runner holds is pickled for its run's process by reference to its module:
    Prefect's own loader names a file's module `__prefect_loader_...`, which no other process
    can import.
    """
    import importlib
    import importlib.util

    path_text, _, name = entrypoint.rpartition(":")
    if not path_text.endswith(".py"):
        return None
    path = Path(path_text).resolve()
    parts = path.with_suffix("").parts
    for start in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[start:])
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and Path(spec.origin).resolve() == path:
            flow: Flow[..., Any] = getattr(importlib.import_module(module_name), name)
            return flow
    return None
