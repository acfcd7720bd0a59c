"""Fetch 200 local feeds in this process and on a local Dask cluster; print the times.

Run: `.venv/bin/python bench/bench_dask_fetch.py` (about a minute; starts a temporary Prefect
server, a feed server on 127.0.0.1 and a LocalCluster of two worker processes). Figures only:
on one machine Dask adds scheduling and pickling to an I/O-bound step; it pays off when the
workers are on other machines, with their own network and cores (docs/scaling.md).
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta

import vigie  # noqa: F401  (turns telemetry off before Prefect is imported)
from flows.fetch_on_dask import fetch_due_sources
from tasks.collect.fetch import fetch_sources
from vigie.localservers import FeedServer
from vigie.models import FetchResult
from vigie.scenario import Item, rss_document
from vigie.settings import Collection, Source

FEEDS = 200
ENTRIES = 30
ROUNDS = 3


def publish(server: FeedServer) -> list[Source]:
    anchor = datetime.now(UTC)
    sources = []
    for n in range(FEEDS):
        items = [
            Item(f"Article {n}-{k}", f"https://j{n}.example/{k}", "x" * 400, timedelta(hours=k))
            for k in range(ENTRIES)
        ]
        url = server.set(f"/f/{n}.xml", rss_document(f"Feed {n}", items, anchor))
        sources.append(Source(name=f"Feed {n}", url=url))
    return sources


def main() -> None:
    from distributed import LocalCluster
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    @flow(name="bench-fetch")
    def timed_fetch(sources: list[Source], collection: Collection) -> tuple[float, int]:
        t0 = time.perf_counter()
        results = fetch_due_sources(sources, {}, collection)
        return time.perf_counter() - t0, sum(r.status == "ok" for r in results)

    # One host serves every feed here: per_host = concurrency, so both paths may use 32
    # connections at once (per batch, for Dask).
    base = Collection(concurrency=32, per_host=32)
    with (
        FeedServer() as server,
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
    ):
        sources = publish(server)
        rows: list[tuple[str, list[float]]] = []

        plain: list[float] = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            results: list[FetchResult] = fetch_sources(sources, {}, collection=base)
            plain.append(time.perf_counter() - t0)
            assert sum(r.status == "ok" for r in results) == FEEDS
        rows.append(("plain function, thread pool", plain))

        def in_flow(collection: Collection) -> list[float]:
            times = []
            for _ in range(ROUNDS):
                seconds, ok = timed_fetch(sources, collection)
                assert ok == FEEDS
                times.append(seconds)
            return times

        rows.append(("watch-cycle path, no Dask", in_flow(base)))
        address = cluster.scheduler_address
        for size in (50, 25):
            collection = base.model_copy(update={"dask_address": address, "dask_batch_size": size})
            times = in_flow(collection)
            rows.append((f"Dask, 2 worker processes, batches of {size}", times))
        local = base.model_copy(update={"dask_address": "local", "dask_batch_size": 50})
        rows.append(('Dask "local" (threads in process), batches of 50', in_flow(local)))

    print(f"fetch of {FEEDS} local feeds of {ENTRIES} entries, {ROUNDS} rounds (seconds)")
    for label, times in rows:
        shown = " ".join(f"{t:.2f}" for t in times)
        print(f"  {label:<52} median {statistics.median(times):6.2f}   ({shown})")


if __name__ == "__main__":  # LocalCluster starts worker processes that import this module
    main()
