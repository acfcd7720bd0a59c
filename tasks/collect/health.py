"""Health of the watch itself: a source that keeps failing, answers with an HTML page, or has
gone silent for much longer than usual is reported to the operators once, and again when it
recovers: one email per cycle lists every change. The verdicts are plain functions of what
`sources` remembers; the task records them and queues the notice in the same transaction, so a
rerun never sends it twice.
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.notify.emails import source_health_notice
from tasks.notify.failures import network_down
from vigie.models import EntryFreshness, HealthChange, HealthVerdict, Mention, SourceCondition
from vigie.settings import Health, Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

HTML_PAGE_ERROR = "not a feed: an HTML page"


def entry_freshness(mentions: Iterable[Mention]) -> dict[str, EntryFreshness]:
    """Newest entry and usual gap between entries, per source, from every parsed entry."""
    return freshness_of((m.source, m.published_at, m.collected_at) for m in mentions)


def freshness_of(entries: Iterable[tuple[str, datetime, datetime]]) -> dict[str, EntryFreshness]:
    """Newest entry and usual gap between entries, per source, from each entry's source,
    publication time and collection time.

    Entries without a date were given the collection time by normalisation; they say nothing
    about freshness and are left out.
    """
    dates: dict[str, list[datetime]] = defaultdict(list)
    for source, published_at, collected_at in entries:
        if published_at != collected_at:
            dates[source].append(min(published_at, collected_at))
    freshness = {}
    for source, moments in dates.items():
        moments.sort()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
        gap = statistics.median(gaps) if len(gaps) >= 2 else None
        freshness[source] = EntryFreshness(source, moments[-1], gap, moments[0])
    return freshness


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} d"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{max(seconds, 60) / 60:.0f} min"


def judge_source(condition: SourceCondition, health: Health, now: datetime) -> HealthVerdict:
    """The health of one source now.

    A failing source stays failing until a fetch succeeds (no flapping between the first
    failure and the threshold); an HTML page is reported at once, since it usually means the
    feed moved; silence is judged only on a source whose fetches succeed.
    """
    failures = condition.consecutive_failures
    error = condition.last_error or "unknown error"
    if failures and error.startswith(HTML_PAGE_ERROR):
        return HealthVerdict("not_a_feed", "answers with an HTML page instead of a feed")
    if failures >= health.failures_before_notice or (
        failures and condition.health in ("failing", "not_a_feed")
    ):
        return HealthVerdict("failing", f"{failures} failed cycle(s) in a row: {error}")
    if failures == 0 and condition.newest_entry_at is not None and condition.entry_gap_s:
        limit = max(condition.entry_gap_s * health.silence_factor, health.min_silence_hours * 3600)
        age = (now - condition.newest_entry_at).total_seconds()
        if age > limit:
            return HealthVerdict(
                "silent",
                f"newest entry is {_duration(age)} old, while it usually publishes every "
                f"{_duration(condition.entry_gap_s)}",
            )
    if condition.health == "silent" and failures:
        # A silent source that now fails is still not watching: keep one notice.
        return HealthVerdict("silent", "silent, and its last fetch failed: " + error)
    return HealthVerdict("ok", "collected normally")


def health_changes(
    conditions: Sequence[SourceCondition], health: Health, now: datetime
) -> list[HealthChange]:
    """The sources whose verdict differs from the one recorded: each is one notice."""
    changes = []
    for condition in conditions:
        verdict = judge_source(condition, health, now)
        if verdict.state != condition.health:
            changes.append(HealthChange(condition.name, condition.health, verdict, condition))
    return changes


def sources_unreachable(conditions: Sequence[SourceCondition], settings: Settings) -> bool:
    """Whether every source fetched so far now fails to connect (DNS or connection), on
    at least two hosts: the machine has no network, rather than each source a fault."""
    hosts = {s.name: urlsplit(s.url).netloc.lower() for s in settings.sources}
    failing = [
        (c.last_error, hosts.get(c.name, c.name)) for c in conditions if c.consecutive_failures
    ]
    return network_down(failing, total=len(conditions))


def check_source_health(
    store: Store,
    settings: Settings,
    freshness: dict[str, EntryFreshness],
    *,
    now: datetime,
) -> list[str]:
    """Record freshness, judge every configured source, and queue one notice for all the
    changes of this cycle (to the operators: `Settings.source_notice_recipients`)."""
    names = [s.name for s in settings.sources]
    with store.transaction():
        store.record_freshness(list(freshness.values()))
        conditions = store.source_conditions(names)
        changes = health_changes(conditions, settings.health, now)
        for change in changes:
            store.set_health(change.source, change.verdict.state, change.verdict.reason, now)
        if changes:
            notice = source_health_notice(
                settings, changes, now=now, network_down=sources_unreachable(conditions, settings)
            )
            store.queue(notice, now)
    return [f"{c.source}: {c.previous} -> {c.verdict.state}" for c in changes]


@task(name="check-source-health", cache_policy=NO_CACHE)
def check_source_health_task(
    path: Any, settings: Settings, freshness: dict[str, EntryFreshness], now: datetime
) -> list[str]:
    """Tell the operators, in one email per cycle, about sources that stopped watching (and
    their recovery)."""
    with open_warehouse(path) as con:
        return check_source_health(Store(con), settings, freshness, now=now)
