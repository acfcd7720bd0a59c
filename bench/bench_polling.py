"""Benchmark: adaptive polling against fixed polling, on a simulated clock.

A farm of feeds publishing at rates from hourly to weekly (Poisson), some of them bursty (a
weekly feed with a few bursts of 15 to 60 entries in one to four hours), each showing its newest
50 entries, most with honest validators (a 304 when nothing changed), some with validators that
lie (a new ETag on every answer). A tenth of them are tier 1. Over a simulated week of watch
cycles every 10 minutes, fixed polling fetches every feed every cycle; adaptive polling runs the
cycle's own functions (tasks/collect/schedule.py: `due_for_polling`, `fetch_states`,
`screen_fetched`, `next_polls`, and `freshness_of` for what a fetch shows) with the default
bounds. A third row polls every feed at the one fixed interval that spends the same number of
fetches as adaptive polling with its default maximum, and adaptive polling is also run with
smaller maximums. No HTTP: the farm answers in memory, so the figures are counts.

Prints, side by side: fetches, bodies downloaded (200), bodies parsed, the recall of new
entries (seen at least once before they left the feed's window) and the delay to see them
(median, 90th percentile; tier 1 alone too). Figures only.

    python bench/bench_polling.py [--feeds 300] [--days 7] [--seed 7]
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from tasks.collect.health import freshness_of
from tasks.collect.schedule import (
    PollPolicy,
    due_for_polling,
    fetch_states,
    next_polls,
    screen_fetched,
)
from vigie.models import FetchResult, SourceOutcome, SourceState
from vigie.settings import Collection, Detection, Source

T0 = datetime(2026, 11, 2, tzinfo=UTC)
CYCLE = timedelta(minutes=10)
WINDOW = 50  # entries a feed shows


@dataclass
class Feed:
    """One simulated feed: its publication times (seconds from T0, sorted) and its server."""

    source: Source
    times: list[float]
    honest: bool
    kind: str
    answers: int = 0

    def window(self, at_s: float) -> list[float]:
        end = bisect.bisect_right(self.times, at_s)
        return self.times[max(0, end - WINDOW) : end]


@dataclass
class Tally:
    fetches: int = 0
    bodies: int = 0
    parsed: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    seen: dict[tuple[str, float], float] = field(default_factory=dict)  # entry -> delay (s)


def _poisson(rng: random.Random, start_s: float, end_s: float, mean_gap_s: float) -> list[float]:
    times, at = [], start_s
    while (at := at + rng.expovariate(1 / mean_gap_s)) < end_s:
        times.append(at)
    return times


def make_farm(count: int, days: float, seed: int) -> list[Feed]:
    rng = random.Random(seed)
    history_s, end_s = -14 * 86400.0, days * 86400.0
    feeds = []
    for index in range(count):
        bursty = index % 5 == 4
        if bursty:
            times = _poisson(rng, history_s, end_s, 7 * 86400)
            for _ in range(rng.randint(2, 3)):
                start = rng.uniform(0, end_s)
                length = rng.uniform(3600, 4 * 3600)
                size = rng.randint(15, 60)
                times += [start + rng.uniform(0, length) for _ in range(size)]
            kind = "bursty"
        else:
            gap = math.exp(rng.uniform(math.log(3600), math.log(7 * 86400)))
            times = _poisson(rng, history_s, end_s, gap)
            kind = "hourly-daily" if gap < 86400 else "daily-weekly"
        source = Source(
            name=f"feed-{index:04d}",
            url=f"https://farm.example/{index}.xml",
            tier=1 if index % 10 == 0 else 3,
        )
        feeds.append(Feed(source, sorted(times), honest=index % 7 != 3, kind=kind))
    return feeds


def _answer(feed: Feed, state: SourceState | None, now: datetime, at_s: float) -> FetchResult:
    window = feed.window(at_s)
    newest = f'"{len(window)}-{window[-1] if window else 0}"'
    feed.answers += 1
    etag = newest if feed.honest else f'"{feed.answers}"'
    name, url = feed.source.name, feed.source.url
    if feed.honest and state is not None and state.etag == etag:
        return FetchResult(name, url, "not_modified", now, 0.0, http_status=304, etag=etag)
    body = ",".join(f"{t:.3f}" for t in window).encode()
    return FetchResult(name, url, "ok", now, 0.0, http_status=200, body=body, etag=etag)


def _remember(
    previous: SourceState | None, name: str, result: FetchResult, now: datetime
) -> SourceState:
    """What `Store.load_cycle` keeps of a fetch (validators, last run)."""
    base = previous or SourceState(name)
    return replace(base, etag=result.etag, last_run_at=now, consecutive_failures=0)


def run_adaptive(feeds: Sequence[Feed], policy: PollPolicy, cycles: int) -> Tally:
    tally = Tally()
    sources = [f.source for f in feeds]
    by_name = {f.source.name: f for f in feeds}
    states: dict[str, SourceState] = {}
    for number in range(cycles):
        now = T0 + number * CYCLE
        at_s = (now - T0).total_seconds()
        due, _ = due_for_polling(sources, states, now, policy)
        given = fetch_states(due, states, now, policy)
        fetched = [_answer(by_name[s.name], given.get(s.name), now, at_s) for s in due]
        tally.fetches += len(fetched)
        tally.by_source.update(r.source for r in fetched)
        tally.bodies += sum(r.body is not None for r in fetched)
        screened = screen_fetched(fetched, states, now, policy)
        outcomes, entries = [], []
        for result in screened:
            feed = by_name[result.source]
            items = 0
            if result.status == "ok":
                tally.parsed += 1
                window = feed.window(at_s)
                items = len(window)
                for t in window:
                    published = T0 + timedelta(seconds=t)
                    entries.append((result.source, published, now))
                    tally.seen.setdefault((result.source, t), at_s - t)
            outcomes.append(SourceOutcome(result, result.status, items=items))
        freshness = freshness_of(entries)
        polls = {p.source: p for p in next_polls(sources, outcomes, freshness, states, now, policy)}
        for result in screened:
            state = _remember(states.get(result.source), result.source, result, now)
            fresh = freshness.get(result.source)
            poll = polls[result.source]
            states[result.source] = replace(
                state,
                newest_entry_at=max(
                    (t for t in (state.newest_entry_at, fresh and fresh.newest_at) if t),
                    default=None,
                ),
                entry_gap_s=fresh.gap_s if fresh and fresh.gap_s else state.entry_gap_s,
                poll_interval_s=poll.poll_interval_s,
                quiet_polls=poll.quiet_polls,
                content_hash=poll.content_hash or state.content_hash,
                full_fetch_at=poll.full_fetch_at or state.full_fetch_at,
                server_wait_until=poll.server_wait_until,
            )
    return tally


def run_fixed(feeds: Sequence[Feed], every_cycles: int, cycles: int) -> Tally:
    """Every feed polled every `every_cycles` cycles (staggered), honest validators honoured."""
    tally = Tally()
    for index, feed in enumerate(feeds):
        last_etag: str | None = None
        for number in range(index % every_cycles, cycles, every_cycles):
            now = T0 + number * CYCLE
            at_s = (now - T0).total_seconds()
            result = _answer(feed, SourceState(feed.source.name, etag=last_etag), now, at_s)
            tally.fetches += 1
            tally.by_source[feed.source.name] += 1
            last_etag = result.etag
            if result.body is None:
                continue
            tally.bodies += 1
            tally.parsed += 1
            for t in feed.window(at_s):
                tally.seen.setdefault((feed.source.name, t), at_s - t)
    return tally


def _recall(feeds: Sequence[Feed], tally: Tally, end_s: float, tier1: bool = False) -> str:
    delays, published, seen = [], 0, 0
    for feed in feeds:
        if tier1 and feed.source.tier != 1:
            continue
        for t in feed.times:
            if 0 <= t < end_s:
                published += 1
                delay = tally.seen.get((feed.source.name, t))
                if delay is not None:
                    seen += 1
                    delays.append(delay / 60)
    if not delays:
        return "-"
    delays.sort()
    p90 = delays[int(0.9 * (len(delays) - 1))]
    return (
        f"{100 * seen / published:5.1f}% {statistics.median(delays):5.1f} {p90:6.1f} "
        f"{delays[-1]:6.0f}"
    )


def _policy(max_minutes: float) -> PollPolicy:
    """The default bounds of `Collection` and `Detection` for a 10-minute cadence."""
    collection = Collection(adaptive_polling=True)
    return PollPolicy(
        adaptive=True,
        cycle_minutes=CYCLE.total_seconds() / 60,
        min_minutes=CYCLE.total_seconds() / 60,
        max_minutes=max_minutes,
        tier1_max_minutes=Detection().window_minutes / 2,
        incident_max_minutes=float(collection.poll_incident_max_minutes),
        full_fetch_hours=float(collection.full_fetch_hours),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    default_max = float(Collection().poll_max_minutes)
    policy = _policy(default_max)
    feeds = make_farm(args.feeds, args.days, args.seed)
    cycles = int(args.days * 86400 / CYCLE.total_seconds())
    # Entries published in the last 4 hours may be seen after the simulated week: left out.
    end_s = args.days * 86400 - 4 * 3600
    kinds = sorted({f.kind for f in feeds})
    print(
        f"Adaptive polling on a simulated week: {len(feeds)} feeds "
        f"({', '.join(f'{sum(f.kind == k for f in feeds)} {k}' for k in kinds)}; "
        f"{sum(not f.honest for f in feeds)} with lying validators, "
        f"{sum(f.source.tier == 1 for f in feeds)} tier 1), a cycle every 10 min, "
        f"{sum(1 for f in feeds for t in f.times if 0 <= t < end_s)} new entries"
    )
    print(
        f"bounds: min {policy.min_minutes:g} min, max {policy.max_minutes:g} min (default), "
        f"tier 1 {policy.tier1_max_minutes:g} min, full fetch every {policy.full_fetch_hours:g} h"
    )
    fixed = run_fixed(feeds, 1, cycles)
    rows: list[tuple[str, Tally]] = [("fixed, every cycle", fixed)]
    adaptive = fixed
    adaptive_s = 0.0
    for max_minutes in sorted({60.0, 120.0, 240.0, default_max}):
        t0 = time.perf_counter()
        tally = run_adaptive(feeds, _policy(max_minutes), cycles)
        label = f"adaptive, max {max_minutes:g} min"
        if max_minutes == default_max:
            adaptive, adaptive_s, label = tally, time.perf_counter() - t0, label + " *"
        rows.append((label, tally))
    budget = max(1, round(fixed.fetches / max(adaptive.fetches, 1)))
    rows.append((f"fixed, every {budget * 10} min", run_fixed(feeds, budget, cycles)))
    print(
        f"{'polling':<24} {'fetches':>8} {'bodies':>7} {'parsed':>7}  "
        f"{'recall  median  p90   max delay (min)':<36} tier 1: recall median p90 max"
    )
    for label, tally in rows:
        print(
            f"{label:<24} {tally.fetches:>8} {tally.bodies:>7} {tally.parsed:>7}  "
            f"{_recall(feeds, tally, end_s):<36} {_recall(feeds, tally, end_s, tier1=True)}"
        )
    print(
        f"* the default: {1 - adaptive.fetches / fixed.fetches:.0%} fewer fetches than fixed "
        f"polling, {1 - adaptive.parsed / fixed.parsed:.0%} fewer bodies parsed; the last row "
        f"spends about as many fetches as it, at one interval for every feed (scheduling took "
        f"{adaptive_s:.1f} s for {cycles} cycles)"
    )
    for kind in kinds:
        group = [f for f in feeds if f.kind == kind]
        fetches = [sum(t.by_source[f.source.name] for f in group) for t in (fixed, adaptive)]
        print(
            f"  {kind:<14} fetches {fetches[0]:>7} -> {fetches[1]:>6}   recall, delay: fixed "
            f"{_recall(group, fixed, end_s)}   adaptive {_recall(group, adaptive, end_s)}"
        )


if __name__ == "__main__":
    main()
