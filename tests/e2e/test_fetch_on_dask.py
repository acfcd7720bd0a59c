"""The watch cycle fetching on a real Dask cluster (distributed.LocalCluster with two worker
processes, started here) under a real temporary Prefect server, against feeds served on
127.0.0.1: the same mentions, source runs and conditional GETs as the in-process fetch."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer
from vigie.scenario import Item, rss_document
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

FEEDS = 12
BATCH_SIZE = 5


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """Two worker processes of one thread each (the machine has two cores), no dashboard."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


def _publish(server: FeedServer, anchor: datetime) -> list[dict[str, object]]:
    """Twelve feeds of three items (every third item about the dairy), one article carried by
    two feeds, and one source that is not there (404)."""
    sources: list[dict[str, object]] = []
    for n in range(FEEDS):
        items = [
            Item(
                f"Laiterie Boréale : nouvelle {n}-{k}" if k == 0 else f"Météo du jour {n}-{k}",
                f"https://journal-{n}.example/articles/{n}-{k}",
                f"<p>Article {n}-{k}.</p>",
                timedelta(hours=k + 1),
            )
            for k in range(3)
        ]
        if n in (3, 9):
            shared = "https://agence.example/depeche-boreale"
            items.append(Item("Dépêche : la Laiterie Boréale recrute", shared, "", timedelta()))
        url = server.set(f"/feeds/{n}.xml", rss_document(f"Journal {n}", items, anchor))
        sources.append({"name": f"Journal {n}", "url": url, "platform": "news", "tier": 2})
    sources.append({"name": "Disparu", "url": server.url("/feeds/missing.xml"), "tier": 3})
    return sources


def _config(write_config: ConfigWriter, folder: Path, **kwargs: Any) -> Path:
    """A config of its own (and so a warehouse of its own) in `folder`."""
    written = write_config(**kwargs)
    folder.mkdir()
    path = folder / "vigie.toml"
    written.rename(path)
    return path


def _rows(config: Path, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        return con.execute(sql).fetchall()


MENTIONS = (
    "SELECT mention_id, source, url, title, summary, published_at, topics FROM mentions "
    "ORDER BY mention_id"
)
SIGHTINGS = "SELECT mention_id, source FROM mention_sightings ORDER BY ALL"
RUNS = (
    "SELECT source, status, http_status, bytes, items, new_mentions, error FROM source_runs "
    "JOIN cycles USING (cycle_id) ORDER BY cycles.started_at, source"
)
COUNTS = (
    "sources_ok",
    "sources_not_modified",
    "sources_failed",
    "entries_parsed",
    "collected",
    "matched",
    "new_mentions",
    "quarantined",
)


def test_a_cycle_fetching_on_dask_finds_what_the_in_process_fetch_finds(
    prefect_harness: str,
    dask_cluster: Any,
    feed_server: FeedServer,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    from prefect.utilities.asyncutils import run_coro_as_sync

    from flows.watch_cycle import watch_cycle

    sources = _publish(feed_server, datetime.now(UTC))
    plain = _config(write_config, tmp_path / "plain", sources=sources, smtp_port=1)
    dask_extra = (
        f'dask_address = "{dask_cluster.scheduler_address}"\ndask_batch_size = {BATCH_SIZE}\n'
    )
    on_dask = _config(
        write_config, tmp_path / "dask", sources=sources, smtp_port=1, extra=dask_extra
    )

    summaries = {}
    for name, config in (("plain", plain), ("dask", on_dask)):
        first = watch_cycle(str(config))
        second = watch_cycle(str(config))  # every feed unchanged: 304 with the stored ETag
        summaries[name] = [{key: s[key] for key in COUNTS} for s in (first, second)]

    assert summaries["dask"] == summaries["plain"]
    [first, second] = summaries["dask"]
    assert first["sources_ok"] == FEEDS
    assert first["sources_failed"] == {"Disparu": "HTTP 404 Not Found"}
    assert first["new_mentions"] == FEEDS + 1  # the shared article is one mention
    assert (second["sources_not_modified"], second["new_mentions"]) == (FEEDS, 0)
    for sql in (MENTIONS, SIGHTINGS, RUNS):
        assert _rows(on_dask, sql) == _rows(plain, sql)
    assert ("Disparu", "error", 404) in [row[:3] for row in _rows(on_dask, RUNS)]

    # The batches ran as Prefect task runs of a `fetch-on-dask` subflow (whose parameters are
    # counts), and on the cluster's workers.
    batches = -(-(FEEDS + 1) // BATCH_SIZE)
    counts = {"plan": {"batches": batches, "sources": FEEDS + 1, "batch_size": BATCH_SIZE}}
    name = f"fetch-on-dask {FEEDS + 1} sources in {batches} batches"
    assert run_coro_as_sync(_dask_runs()) == [(name, counts, ["Completed"] * batches)] * 2
    computed = dask_cluster.scheduler.task_prefixes["fetch_batch_task"].all_durations
    assert computed["compute"] > 0


async def _dask_runs() -> list[tuple[str, dict[str, Any], list[str]]]:
    """The name and parameters of each `fetch-on-dask` run and the states of its task runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["fetch-on-dask"]))
        )
        found = []
        for run in runs:
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [run.id]})
            )
            found.append((run.name, run.parameters, sorted(str(t.state_name) for t in tasks)))
        return found


def test_an_unreachable_dask_cluster_is_logged_and_the_sources_are_fetched_in_process(
    prefect_harness: str,
    feed_server: FeedServer,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    from flows.watch_cycle import watch_cycle

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sources = _publish(feed_server, datetime.now(UTC))
    config = write_config(
        sources=sources, smtp_port=1, extra=f'dask_address = "tcp://127.0.0.1:{port}"\n'
    )
    summary = watch_cycle(str(config))
    assert summary["sources_ok"] == FEEDS
    assert summary["sources_failed"] == {"Disparu": "HTTP 404 Not Found"}
    assert summary["new_mentions"] == FEEDS + 1
