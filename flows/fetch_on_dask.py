"""Fetching on a Dask cluster: the due sources split into batches, each batch one Prefect task
run on a `DaskTaskRunner`, inside the small subflow `fetch-on-dask` (not a deployment).

The watch cycle calls `fetch_due_sources`; with `collection.dask_address` unset it is the
in-process thread pool of `tasks.collect.fetch`, as before. With it set (docs/scaling.md), each
batch is fetched by the same `tasks.collect.fetch.fetch_sources` on a Dask worker, with the same
bounds (`concurrency` and `per_host` hold per batch, and each batch's step ends within
`deadline_s` and its margin after it starts) and each source's ETag/Last-Modified, so the cycle
gets the same `FetchResult`s, in the same order, as without Dask. The cycle waits on the cluster
until `wait_until` (the step's deadline and margin, and `CLUSTER_SLACK_S` for the cluster's own
time); a batch not back by then has its sources deferred, first next cycle.
Failures stay data: a batch whose worker died is recorded as failed fetches with the reason,
and a cluster that cannot be reached is logged and the sources are fetched in this process,
so the watch never goes blind because the cluster is down.
Requires: Dask workers that run this version of Vigie and reach the feeds and the Prefect API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote
from pydantic import BaseModel, ConfigDict, model_serializer

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from tasks.collect.capacity import host_of
from tasks.collect.fetch import STEP_MARGIN_S, fair_order, fetch_sources, fetch_sources_task
from vigie.models import FetchResult, SourceState
from vigie.settings import Collection, Source

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

# How long the run waits to reach a remote scheduler before fetching in-process instead.
CONNECT_TIMEOUT_S = 10
# How long past the step's deadline (and its margin) the run waits for a batch's results to
# come back: the cluster's own time (scheduling, a cold worker importing Vigie, which took over
# 10 s on a loaded 2-core machine). A batch not back by then has its sources deferred.
CLUSTER_SLACK_S = 20
NOT_BACK = "not back from the Dask cluster in time for the cycle: fetched first next cycle"


@dataclass(frozen=True, slots=True)
class FetchBatch:
    """Sources fetched by one task on the cluster, with the state each needs."""

    positions: tuple[int, ...]  # where each source stands among the due sources
    sources: tuple[Source, ...]
    states: dict[str, SourceState]


def plan_batches(
    due: Sequence[Source], states: Mapping[str, SourceState], batch_size: int
) -> list[FetchBatch]:
    """Split the due sources into batches of at most `batch_size`.

    The sources of one host are kept together (hosts in order of first appearance in
    `fair_order`, the sources of a host in that order), so a host is spread over as few
    batches as possible: `per_host` is enforced within a batch, and only
    a host with more sources than a batch, or at a batch's edge, can be fetched by two at once.
    """
    by_host: dict[str, list[int]] = {}
    for position in fair_order(due, states):  # deferred last cycle: in the first batches
        by_host.setdefault(host_of(due[position].url), []).append(position)
    order = [position for positions in by_host.values() for position in positions]
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        sources = tuple(due[p] for p in chunk)
        batches.append(
            FetchBatch(
                positions=tuple(chunk),
                sources=sources,
                states={s.name: states[s.name] for s in sources if s.name in states},
            )
        )
    return batches


def merge_batches(
    batches: Sequence[FetchBatch],
    results: Sequence[Sequence[FetchResult] | BaseException],
    *,
    now: datetime,
) -> list[FetchResult]:
    """The results of every batch in the due sources' order; a batch that failed on the
    cluster (its worker died, its task raised) gives each of its sources a failed fetch, and
    one not back by the step's deadline (a `TimeoutError`) a deferred one."""
    merged: dict[int, FetchResult] = {}
    for batch, outcome in zip(batches, results, strict=True):
        if isinstance(outcome, TimeoutError):
            for position, source in zip(batch.positions, batch.sources, strict=True):
                merged[position] = FetchResult(
                    source=source.name,
                    url=source.url,
                    status="deferred",
                    started_at=now,
                    duration_s=0.0,
                    error=NOT_BACK,
                )
            continue
        if isinstance(outcome, BaseException):
            reason = f"fetch crashed on the Dask cluster ({type(outcome).__name__})"
            for position, source in zip(batch.positions, batch.sources, strict=True):
                merged[position] = FetchResult(
                    source=source.name,
                    url=source.url,
                    status="error",
                    started_at=now,
                    duration_s=0.0,
                    error=reason,
                )
            continue
        for position, result in zip(batch.positions, outcome, strict=True):
            merged[position] = result
    return [merged[position] for position in sorted(merged)]


class FetchPlan(BaseModel):
    """What `fetch-on-dask` fetches. Prefect stores a run's parameters with the run (in the UI):
    they are shown as counts, not as every source and its state, each cycle."""

    model_config = ConfigDict(frozen=True)
    batches: tuple[FetchBatch, ...]
    collection: Collection
    wait_until: datetime  # when the cycle stops waiting on the cluster (wall clock, UTC)

    @model_serializer(mode="plain")
    def _counts(self) -> dict[str, Any]:
        return {
            "batches": len(self.batches),
            "sources": sum(len(batch.sources) for batch in self.batches),
            "batch_size": self.collection.dask_batch_size,
        }


@task(name="fetch-batch", cache_policy=NO_CACHE)
def fetch_batch_task(batch: FetchBatch, collection: Collection) -> list[FetchResult]:
    """Fetch one batch of sources concurrently (on a Dask worker)."""
    return fetch_sources(batch.sources, batch.states, collection=collection)


def _run_name() -> str:
    plan = flow_run.parameters.get("plan")
    counts = plan.model_dump() if isinstance(plan, FetchPlan) else plan
    if isinstance(counts, dict) and {"sources", "batches"} <= counts.keys():
        batches = f"{counts['batches']} batch" + ("es" if counts["batches"] != 1 else "")
        return f"fetch-on-dask {counts['sources']} sources in {batches}"
    return "fetch-on-dask"


@flow(name="fetch-on-dask", flow_run_name=_run_name)
def fetch_on_dask(plan: FetchPlan) -> list[FetchResult]:
    """Fetch every batch of the plan as a task of this flow's task runner (a DaskTaskRunner)."""
    futures = fetch_batch_task.map(list(plan.batches), unmapped(plan.collection))
    results: list[Sequence[FetchResult] | BaseException] = []
    for future in futures:
        value: object
        left_s = (plan.wait_until - datetime.now(UTC)).total_seconds()
        try:  # a failed task gives its exception
            value = future.result(timeout=max(0.0, left_s), raise_on_failure=False)
        except TimeoutError as err:  # each batch is bounded: the cluster is busy or stuck
            value = err
        except Exception as err:  # the worker itself was lost (distributed.KilledWorker)
            value = err
        results.append(value if isinstance(value, BaseException | list) else TypeError())
    return merge_batches(plan.batches, results, now=datetime.now(UTC))


def dask_task_runner(address: str) -> TaskRunner[Any]:
    """A DaskTaskRunner for `collection.dask_address`: the scheduler at that address, or for
    "local" a cluster of threads in this process (no dashboard, no port opened)."""
    # Imported here: distributed takes seconds to import, and only Dask users need it.
    from prefect_dask.task_runners import DaskTaskRunner

    if address == "local":
        return DaskTaskRunner(cluster_kwargs={"processes": False, "dashboard_address": None})
    return DaskTaskRunner(address=address, client_kwargs={"timeout": CONNECT_TIMEOUT_S})


def fetch_due_sources(
    due: Sequence[Source], states: Mapping[str, SourceState], collection: Collection
) -> list[FetchResult]:
    """Fetch the due sources: on the Dask cluster when `collection.dask_address` is set,
    otherwise in this process. Call it from a flow."""
    # quote(): Prefect would otherwise walk every source looking for futures (watch_cycle._q).
    quoted_due = cast(Sequence[Source], quote(due))
    quoted_states = cast(Mapping[str, SourceState], quote(states))
    if collection.dask_address is None or not due:
        return fetch_sources_task(quoted_due, quoted_states, collection)
    plan = FetchPlan(
        batches=tuple(plan_batches(due, states, collection.dask_batch_size)),
        collection=collection,
        wait_until=datetime.now(UTC)
        + timedelta(seconds=collection.deadline_s + STEP_MARGIN_S + CLUSTER_SLACK_S),
    )
    runner = dask_task_runner(collection.dask_address)
    try:
        return fetch_on_dask.with_options(task_runner=runner)(plan)
    except OSError as err:  # distributed: "Timed out trying to connect to tcp://..."
        get_run_logger().warning(
            "Dask cluster %s cannot be reached (%s); fetching in this process instead",
            collection.dask_address,
            err,
        )
        return fetch_sources_task(quoted_due, quoted_states, collection)
