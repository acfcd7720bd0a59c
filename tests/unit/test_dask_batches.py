"""Fetching on Dask without a cluster: the `collection.dask_address` key, how due sources are
split into batches (`plan_batches`), how batch results come back in order (`merge_batches`),
and what the `fetch-on-dask` run shows as its parameters (counts, not every source)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from distributed import KilledWorker
from fastapi.encoders import jsonable_encoder

from flows.fetch_on_dask import NOT_BACK, FetchPlan, merge_batches, plan_batches
from tests.configs import MINIMAL_TOML, settings_from, write_toml
from vigie.errors import ConfigError
from vigie.models import FetchResult, SourceState
from vigie.settings import Collection, Source, load_settings

NOW = datetime(2026, 11, 25, 14, 10, tzinfo=UTC)


def _source(name: str, host: str) -> Source:
    return Source(name=name, url=f"https://{host}/{name}.xml")


def _fetched(source: Source) -> FetchResult:
    return FetchResult(
        source=source.name, url=source.url, status="ok", started_at=NOW, duration_s=0.1
    )


@pytest.mark.parametrize(
    "address", ["local", "tcp://10.0.0.5:8786", "tls://dask.example.org:8786", "tcp://[::1]:8786"]
)
def test_a_dask_address_or_local_is_accepted(tmp_path: Path, address: str) -> None:
    text = MINIMAL_TOML + f'\n[collection]\ndask_address = "{address}"\n'
    assert settings_from(tmp_path, text).collection.dask_address == address


def test_dask_is_off_by_default(tmp_path: Path) -> None:
    collection = settings_from(tmp_path, MINIMAL_TOML).collection
    assert (collection.dask_address, collection.dask_batch_size) == (None, 50)


@pytest.mark.parametrize(
    "address",
    ["10.0.0.5:8786", "http://10.0.0.5:8786", "tcp://10.0.0.5", "tcp://:8786", "tcp://h:99999"],
)
def test_a_bad_dask_address_is_one_error_naming_the_key(tmp_path: Path, address: str) -> None:
    path = write_toml(tmp_path, MINIMAL_TOML + f'\n[collection]\ndask_address = "{address}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == (
        f'{path}: collection.dask_address: must be "local" or a Dask scheduler address '
        'such as "tcp://10.0.0.5:8786"'
    )


def test_sources_of_one_host_stay_together_and_batches_are_bounded() -> None:
    due = [
        _source("a1", "a.example"),
        _source("b1", "b.example"),
        _source("a2", "a.example"),
        _source("c1", "c.example"),
        _source("b2", "b.example"),
        _source("a3", "a.example"),
    ]
    batches = plan_batches(due, {}, batch_size=4)
    assert [[s.name for s in b.sources] for b in batches] == [
        ["a1", "a2", "a3", "b1"],
        ["b2", "c1"],
    ]
    assert [b.positions for b in batches] == [(0, 2, 5, 1), (4, 3)]


def test_each_batch_carries_the_conditional_get_state_of_its_sources() -> None:
    due = [_source("a1", "a.example"), _source("b1", "b.example")]
    states = {
        "a1": SourceState("a1", etag='"e1"', last_modified="Tue, 24 Nov 2026 10:00:00 GMT"),
        "b1": SourceState("b1", etag='"e2"'),
        "gone": SourceState("gone", etag='"e3"'),
    }
    first, second = plan_batches(due, states, batch_size=1)
    assert first.states == {"a1": states["a1"]}
    assert second.states == {"b1": states["b1"]}


def test_no_due_source_gives_no_batch() -> None:
    assert plan_batches([], {}, batch_size=10) == []


def test_merged_results_follow_the_due_order() -> None:
    due = [_source(f"s{i}", f"h{i % 3}.example") for i in range(7)]
    batches = plan_batches(due, {}, batch_size=3)
    results = [[_fetched(s) for s in b.sources] for b in batches]
    merged = merge_batches(batches, results, now=NOW)
    assert [r.source for r in merged] == [s.name for s in due]


def test_a_batch_lost_on_the_cluster_fails_each_of_its_sources_with_the_reason() -> None:
    due = [_source("a1", "a.example"), _source("b1", "b.example"), _source("a2", "a.example")]
    batches = plan_batches(due, {}, batch_size=2)  # [a1, a2], [b1]
    lost = KilledWorker("fetch-batch-123", "tcp://10.0.0.7:40000", 3)
    merged = merge_batches(batches, [lost, [_fetched(due[1])]], now=NOW)
    assert [(r.source, r.status) for r in merged] == [
        ("a1", "error"),
        ("b1", "ok"),
        ("a2", "error"),
    ]
    assert merged[0].error == "fetch crashed on the Dask cluster (KilledWorker)"
    assert merged[0].started_at == NOW


def test_the_plan_is_stored_by_prefect_as_counts_only() -> None:
    due = [_source(f"s{i}", "a.example") for i in range(5)]
    collection = Collection(dask_address="local", dask_batch_size=2)
    plan = FetchPlan(batches=tuple(plan_batches(due, {}, 2)), collection=collection, wait_until=NOW)
    # Prefect stores a flow run's parameters as fastapi's jsonable_encoder makes them.
    assert jsonable_encoder(plan) == {"batches": 3, "sources": 5, "batch_size": 2}
    assert plan.batches[2].sources == (due[4],)


def test_sources_deferred_last_cycle_are_in_the_first_batches() -> None:
    """Batches follow the fetch step's fair order: a source never polled, or deferred last
    cycle (its last poll is older), is in the first batch the cluster starts."""
    due = [_source(f"s{i}", f"h{i}.example") for i in range(4)]
    states = {
        "s0": SourceState("s0", last_run_at=NOW),
        "s1": SourceState("s1", last_run_at=NOW),
        "s2": SourceState("s2", last_run_at=NOW - timedelta(minutes=20)),  # deferred since
    }
    batches = plan_batches(due, states, batch_size=2)
    assert [[s.name for s in b.sources] for b in batches] == [["s3", "s2"], ["s0", "s1"]]
    # The results still come back in the order of the due sources.
    merged = merge_batches(batches, [[_fetched(s) for s in b.sources] for b in batches], now=NOW)
    assert [r.source for r in merged] == ["s0", "s1", "s2", "s3"]


def test_a_batch_not_back_by_the_steps_deadline_defers_its_sources() -> None:
    """The cycle waits on the cluster no longer than the step's deadline, its margin and the
    cluster's slack: a batch still out then (a busy or stuck cluster) has its sources
    deferred, not failed."""
    due = [_source("a1", "a.example"), _source("b1", "b.example")]
    batches = plan_batches(due, {}, batch_size=1)
    merged = merge_batches(batches, [TimeoutError("did not complete"), [_fetched(due[1])]], now=NOW)
    assert [(r.source, r.status, r.error) for r in merged] == [
        ("a1", "deferred", NOT_BACK),
        ("b1", "ok", None),
    ]
