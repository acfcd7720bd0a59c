"""Whether the sources of each host can all be polled every cycle at the configured bounds.

Many sources on one host (news searches all live on one) are fetched at most `per_host` at a
time, and the fetch step as a whole lasts at most `deadline_s` (`tasks.collect.fetch`): what it
has no time for is deferred to the next cycle. `host_capacity_warnings` says, before it
happens, which hosts need more time than that: sources on the host / per_host x their typical
fetch time, against the time a cycle gives (`vigie check`). Plain functions of the settings and
of measured fetch times; nothing here talks HTTP (so `vigie check` stays quick).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from urllib.parse import urlsplit

from vigie.settings import Collection, Source

# A fetch's time when the warehouse has none measured for the host yet: a search API or a
# feed far away answers in about a second.
ASSUMED_FETCH_S = 1.0


def host_of(url: str) -> str:
    """The host a URL is fetched from (lower case, with its port), for the per-host bound."""
    try:
        return urlsplit(url).netloc.lower().rpartition("@")[2]
    except ValueError:
        return url


@dataclass(frozen=True, slots=True)
class HostLoad:
    """What one cycle asks of one host."""

    host: str
    sources: int  # configured on the host
    due_per_cycle: float  # sources with a longer poll interval count for their share
    in_flight: int  # min(per_host, concurrency)
    fetch_s: float  # typical time of one fetch
    measured: bool  # fetch_s from the warehouse's recent runs, not assumed

    @property
    def needed_s(self) -> float:
        """Time to fetch what is due each cycle, `in_flight` at a time."""
        return self.due_per_cycle / self.in_flight * self.fetch_s


def host_loads(
    sources: Sequence[Source],
    collection: Collection,
    *,
    cycle_minutes: float,
    fetch_times: Mapping[str, float],
) -> list[HostLoad]:
    """Each host's load per cycle, the busiest first.

    `fetch_times` maps a source's name to its typical fetch time (the median of its recent
    runs); a host's time is the median over its sources measured, else `ASSUMED_FETCH_S`.
    """
    by_host: dict[str, list[Source]] = {}
    for source in sources:
        by_host.setdefault(host_of(source.url), []).append(source)
    loads = []
    for host, on_host in by_host.items():
        measured = [fetch_times[s.name] for s in on_host if s.name in fetch_times]
        due = sum(
            1.0 if s.poll_minutes is None else min(1.0, cycle_minutes / s.poll_minutes)
            for s in on_host
        )
        loads.append(
            HostLoad(
                host=host,
                sources=len(on_host),
                due_per_cycle=due,
                in_flight=min(collection.per_host, collection.concurrency),
                fetch_s=median(measured) if measured else ASSUMED_FETCH_S,
                measured=bool(measured),
            )
        )
    return sorted(loads, key=lambda load: load.needed_s, reverse=True)


def host_capacity_warnings(
    sources: Sequence[Source],
    collection: Collection,
    *,
    cycle_minutes: float,
    fetch_times: Mapping[str, float],
) -> list[str]:
    """One line for each host whose sources cannot all be polled each cycle: they need more
    time than the fetch step has (`deadline_s`, and never more than the cycle's cadence)."""
    budget_s = min(collection.deadline_s, cycle_minutes * 60)
    lines = []
    for load in host_loads(
        sources, collection, cycle_minutes=cycle_minutes, fetch_times=fetch_times
    ):
        if load.needed_s <= budget_s:
            continue
        how = "measured" if load.measured else "assumed, nothing measured yet"
        lines.append(
            f"Warning: host {load.host}: {load.sources} sources, {load.in_flight} at a time "
            f"(per_host), about {load.fetch_s:.1f} s each ({how}): about {load.needed_s:.0f} s "
            f"of fetching per cycle, more than the fetch step's {budget_s:g} s (deadline_s) "
            f"in each {cycle_minutes:g}-min cycle; some wait for a later cycle (they go first "
            "then): raise per_host or deadline_s, or give them poll_minutes."
        )
    return lines
