"""Keeping the Prefect UI true to the warehouse when something happens outside a run: taking
charge of an alert on the command line (`vigie ack`) resumes the acknowledge-alert run that
waits, paused, for a name; runs that `vigie serve` left unfinished when it stopped are closed
with a message, and their incidents ended.

Best effort, like every publication to the UI: the warehouse is the record; without
`PREFECT_API_URL`, or with a server that does not answer, nothing is tried and one line says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx

from tasks.publish.events import prefect_api_url, prefect_server_answers

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun, State

ACK_FLOW = "acknowledge-alert"
ACK_RUN_NAME = "acknowledge {alert_id}"


def _paused_ack_runs(client: SyncPrefectClient, alert_id: str) -> list[FlowRun]:
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    return list(
        client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[ACK_FLOW])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[ACK_RUN_NAME.format(alert_id=alert_id)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
            ),
        )
    )


def resume_acknowledge_runs(alert_id: str, by: str, *, wait_s: float = 15.0) -> str | None:
    """Resume, with `by` as the name, every acknowledge-alert run of `alert_id` that waits
    paused, so that it records the acknowledgement (already in the warehouse: it changes
    nothing) and completes; wait up to `wait_s` for each to finish.

    Returns None when there was nothing to do (no paused run, no `PREFECT_API_URL`, or a
    server that does not answer: `vigie ack` says that once, of its event), "closed" when
    every such run finished, "left" when one has not (no process waits for it), or
    "error: ..." when the API failed.
    """
    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.flow_runs import resume_flow_run

    api_url = prefect_api_url()
    if api_url is None or not prefect_server_answers(api_url):
        return None
    try:
        with get_client(sync_client=True) as client:
            paused = _paused_ack_runs(client, alert_id)
            for run in paused:
                resume_flow_run(run.id, run_input={"name": by})
            left = [r for r in paused if not _finished(client, r.id, wait_s)]
    except (httpx.HTTPError, PrefectHTTPStatusError, RuntimeError) as err:
        return f"error: {type(err).__name__}"
    if not paused:
        return None
    return "left" if left else "closed"


def _finished(client: SyncPrefectClient, run_id: UUID, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        state = client.read_flow_run(run_id).state
        if state is not None and state.is_final():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


@dataclass(frozen=True)
class LeftRun:
    """A run `vigie serve` left unfinished, and how it was closed."""

    flow_run_id: str
    name: str
    flow: str
    state: str


# Runs not final when serve stops: Running or Pending (their process is gone with serve),
# Paused (an acknowledge run waiting in-process: nothing can resume it now), Cancelling.
_UNFINISHED = ("RUNNING", "PENDING", "PAUSED", "CANCELLING")


def close_left_runs(
    deployment_names: Sequence[str],
    since: datetime,
    *,
    on_closed: Callable[[str, FlowRun, State[Any]], None] | None = None,
) -> list[LeftRun]:
    """Close the runs of the deployments `deployment_names` ("flow/deployment") that started
    since `since` (this serve's) and are not final, their process gone with serve: Cancelled
    with a message for a paused run (it waited for a name; `vigie ack` takes charge), Crashed
    with a message for the others. `on_closed(flow name, run, state)` runs after each
    (incident mode ends its incident there). A failing API leaves the rest."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.states import Cancelled, Crashed

    closed: list[LeftRun] = []
    try:
        with get_client(sync_client=True) as client:
            ids: dict[UUID, str] = {}
            for full_name in deployment_names:
                try:
                    deployment = client.read_deployment_by_name(full_name)
                except ObjectNotFound:
                    continue
                ids[deployment.id] = full_name.split("/", 1)[0]
            if not ids:
                return []
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(ids))),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType[t] for t in _UNFINISHED])
                    )
                ),
            )
            for run in runs:
                if run.start_time is not None and run.start_time < since:
                    continue  # not this serve's: another process may still hold it
                state: State[Any]
                if run.state is not None and run.state.is_paused():
                    state = Cancelled(
                        message="vigie serve stopped while this run waited for a name: take "
                        "charge with `vigie ack ALERT --by NAME`"
                    )
                else:
                    state = Crashed(
                        message="vigie serve stopped during this run (Ctrl-C or SIGTERM); "
                        "the next cycle collects what it missed"
                    )
                client.set_flow_run_state(run.id, state, force=True)
                flow = ids.get(run.deployment_id) if run.deployment_id else None
                closed.append(LeftRun(str(run.id), run.name, flow or "", str(state.name)))
                if on_closed is not None:
                    on_closed(flow or "", run, state)
            closed += _close_left_subflows(client, set(ids), since)
    except (httpx.HTTPError, PrefectHTTPStatusError):
        pass  # the server is gone too: what was closed is listed
    return closed


def _close_left_subflows(
    client: SyncPrefectClient, deployment_ids: set[UUID], since: datetime
) -> list[LeftRun]:
    """The subflow runs (an incident's watch cycles) still Running or Pending whose parent run,
    of a served deployment, has ended: their process went with it, so they are Crashed."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentTaskRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=False),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
            ),
        )
    )
    closed: list[LeftRun] = []
    for run in runs:
        if run.parent_task_run_id is None or (run.start_time and run.start_time < since):
            continue
        parent_id = client.read_task_run(run.parent_task_run_id).flow_run_id
        if parent_id is None:
            continue
        parent = client.read_flow_run(parent_id)
        if parent.deployment_id not in deployment_ids or not (
            parent.state is not None and parent.state.is_final()
        ):
            continue
        state: State[Any] = Crashed(
            message=f"vigie serve stopped during this run; its parent run {parent.name!r} "
            f"ended {parent.state.name if parent.state else ''}"
        )
        client.set_flow_run_state(run.id, state, force=True)
        closed.append(LeftRun(str(run.id), run.name, f"subflow of {parent.name}", str(state.name)))
    return closed
