"""Politeness that does not starve the watch (issue 23, item 2): the order the fetch step starts
sources in (`fair_order`), and whether each host's sources fit in a cycle (`host_loads`,
`host_capacity_warnings`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.collect.capacity import ASSUMED_FETCH_S, host_capacity_warnings, host_loads
from tasks.collect.fetch import fair_order
from vigie.models import SourceState
from vigie.settings import Collection, Source

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _searches(count: int, host: str = "news.example", **fields: object) -> list[Source]:
    return [
        Source.model_validate({"name": f"{host} {n}", "url": f"https://{host}/s?q={n}", **fields})
        for n in range(count)
    ]


def test_never_polled_then_the_oldest_last_poll_start_first_config_order_among_equals() -> None:
    sources = _searches(5)
    states = {
        sources[0].name: SourceState(sources[0].name, last_run_at=NOW),
        sources[1].name: SourceState(sources[1].name, last_run_at=NOW - timedelta(minutes=30)),
        sources[2].name: SourceState(sources[2].name),  # known, never run (deferred so far)
        sources[4].name: SourceState(sources[4].name, last_run_at=NOW),
    }
    assert fair_order(sources, states) == [2, 3, 1, 0, 4]


def test_a_host_whose_sources_need_more_than_the_step_is_named_with_its_figures() -> None:
    sources = [*_searches(1000), *_searches(3, host="quotidien.example")]
    collection = Collection(concurrency=32, per_host=8, deadline_s=60)
    fetch_times = {s.name: 0.6 for s in sources[:10]} | {sources[10].name: 0.9}  # median 0.6
    (line,) = host_capacity_warnings(sources, collection, cycle_minutes=10, fetch_times=fetch_times)
    assert line == (
        "Warning: host news.example: 1000 sources, 8 at a time (per_host), about 0.6 s each "
        "(measured): about 75 s of fetching per cycle, more than the fetch step's 60 s "
        "(deadline_s) in each 10-min cycle; some wait for a later cycle (they go first then): "
        "raise per_host or deadline_s, or give them poll_minutes."
    )


@pytest.mark.parametrize(
    ("collection", "cycle_minutes", "fields", "warned"),
    [
        (Collection(per_host=8, deadline_s=10), 10, {}, True),  # 100 / 8 x 1 s = 12.5 s > 10 s
        (Collection(per_host=16, deadline_s=10), 10, {}, False),  # 6.25 s
        (Collection(per_host=16, concurrency=4, deadline_s=10), 10, {}, True),  # 4 at once: 25 s
        (Collection(per_host=8, deadline_s=10), 10, {"poll_minutes": 20}, False),  # half: 6.25 s
        (Collection(per_host=1, deadline_s=600), 1, {}, True),  # 100 s > the 1-min cadence
        (Collection(per_host=1, deadline_s=600), 2, {}, False),  # 100 s < 2 min
    ],
    ids=["per_host", "more_per_host", "concurrency", "poll_minutes", "cadence", "longer_cadence"],
)
def test_the_bounds_that_decide_whether_a_host_fits(
    collection: Collection, cycle_minutes: int, fields: dict[str, object], warned: bool
) -> None:
    """The time a cycle gives is the fetch step's (`deadline_s`), never more than the cadence;
    a source polled every other cycle counts for half; nothing measured: about a second."""
    sources = _searches(100, **fields)
    lines = host_capacity_warnings(sources, collection, cycle_minutes=cycle_minutes, fetch_times={})
    assert bool(lines) is warned
    (load,) = host_loads(sources, collection, cycle_minutes=cycle_minutes, fetch_times={})
    assert (load.fetch_s, load.measured) == (ASSUMED_FETCH_S, False)
