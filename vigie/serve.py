"""`vigie serve`: every deployment of prefect.yaml, with its schedules, parameters and
description, served by one process (Prefect's runner); no work pool or worker needed.

The flows are loaded from prefect.yaml's entrypoints in the project folder (the folder of
prefect.yaml, which becomes the working directory), so whatever another branch appends to
prefect.yaml is served as well. `config_path` is set to the configuration's absolute path.
Requires `PREFECT_API_URL` (STACK.md gotcha 2: without it every run would start its own
temporary server). SIGTERM or SIGINT stop it; Prefect then pauses the served deployments until
the next start (STACK.md gotcha 8).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from vigie.deployments import DeploymentSpec, ScheduleSpec
from vigie.errors import ConfigError, PrefectUnreachable, one_line

if TYPE_CHECKING:
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


def serve_deployments(deployments: Sequence[RunnerDeployment], *, limit: int | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    from prefect import serve

    def stop(signum: int, frame: FrameType | None) -> None:
        # Prefect's runner stops on KeyboardInterrupt; SIGTERM (systemd, docker stop, kill)
        # gets the same clean shutdown.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    serve(*deployments, limit=limit, print_starting_message=False)
