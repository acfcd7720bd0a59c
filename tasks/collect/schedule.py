"""Adaptive polling: when each source is fetched next, and which fetches brought nothing new.

With `collection.adaptive_polling`, a source's interval follows how often it publishes (half the
median gap between its entries, as Miniflux's entry-frequency mode does) and how much of each
fetch was already known, as Media Cloud's rss-fetcher does: a fetch that brought nothing new
stretches the interval by half, one whose every entry was new (more may have been missed) brings
it back to the minimum. It stays within `poll_min_minutes` (or the source's `poll_minutes`) and
`poll_max_minutes`, at most `poll_tier1_max_minutes` for tier-1 sources and
`poll_incident_max_minutes` during incident mode. What the server asks for (`Retry-After`,
`Cache-Control: max-age`, `Expires`, RSS `<ttl>`) is a lower bound, capped by that maximum.

Servers whose validators lie (a new ETag on every answer) are caught by a hash of the body: a
200 whose body hashes as the last one parsed counts as unchanged and is not parsed again. Every
`full_fetch_hours`, a source is fetched without validators and parsed whatever its hash.

Plain functions over what the warehouse remembers (`SourceState`) and what a fetch gave; the
cycle calls them where it plans which sources are due and before it parses. Off (the default),
every function leaves the cycle as it was: `due_sources`, every fetch parsed, nothing recorded.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tasks.collect.fetch import due_sources
from vigie.models import EntryFreshness, FetchResult, PollRecord, SourceOutcome, SourceState
from vigie.settings import Settings, Source

# Poll about twice per usual gap between a source's entries: a new entry waits half a gap at most
# on average, and a fetch seldom finds nothing.
RATE_SHARE = 0.5
# Each fetch in a row that brought nothing new stretches the interval this much.
QUIET_GROWTH = 1.5
MAX_QUIET_POLLS = 40
NEVER = datetime.min.replace(tzinfo=UTC)
_TTL = re.compile(rb"<ttl>\s*(\d{1,7})\s*</ttl>", re.IGNORECASE)
_FIRST_ITEM = re.compile(rb"<(?:item|entry)[\s>]", re.IGNORECASE)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """The bounds of adaptive polling, in minutes, as the settings give them."""

    adaptive: bool
    cycle_minutes: float
    min_minutes: float
    max_minutes: float
    tier1_max_minutes: float
    incident_max_minutes: float
    full_fetch_hours: float


def poll_policy(settings: Settings) -> PollPolicy:
    """The polling bounds of `settings` (unset ones resolved, see `Collection`)."""
    collection = settings.collection
    cycle = float(settings.schedule.watch_every_minutes)
    return PollPolicy(
        adaptive=collection.adaptive_polling,
        cycle_minutes=cycle,
        min_minutes=float(collection.poll_min_minutes or cycle),
        max_minutes=float(collection.poll_max_minutes),
        tier1_max_minutes=float(
            collection.poll_tier1_max_minutes or settings.detection.window_minutes / 2
        ),
        incident_max_minutes=float(collection.poll_incident_max_minutes),
        full_fetch_hours=float(collection.full_fetch_hours),
    )


def poll_bounds(
    source: Source, policy: PollPolicy, *, incident: bool = False
) -> tuple[float, float]:
    """The shortest and longest interval of `source`, in seconds.

    The source's own `poll_minutes` raises the minimum, and wins over every cap: it is the
    operator's word on how often that server may be asked.
    """
    low = max(policy.min_minutes, float(source.poll_minutes or 0))
    high = policy.max_minutes
    if source.tier == 1:
        high = min(high, policy.tier1_max_minutes)
    if incident:
        high = min(high, policy.incident_max_minutes)
    return low * 60, max(high, low) * 60


def next_poll_at(
    history: SourceState, source: Source, policy: PollPolicy, *, incident: bool = False
) -> datetime:
    """When `source` is due next: its last run plus the interval its history asks for, within
    its bounds (`poll_bounds`); no sooner than its server asked, unless that is past the maximum.

    A source never run is due at once (`NEVER`); a failing source keeps the minimum (its
    back-off is `due_sources`'s).
    """
    if history.last_run_at is None:
        return NEVER
    low, high = poll_bounds(source, policy, incident=incident)
    wanted = low
    if policy.adaptive and not history.consecutive_failures:
        wanted = history.poll_interval_s or low
    at = history.last_run_at + timedelta(seconds=min(max(wanted, low), high))
    if policy.adaptive and history.server_wait_until is not None:
        at = max(at, min(history.server_wait_until, history.last_run_at + timedelta(seconds=high)))
    return at


def due_for_polling(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    now: datetime,
    policy: PollPolicy,
    *,
    incident: bool = False,
) -> tuple[list[Source], dict[str, str]]:
    """The sources to fetch this cycle, and those skipped with the reason.

    `due_sources` first (`poll_minutes`, back-off after failures); with adaptive polling, a
    source is then due once `next_poll_at` is within half a cycle (the schedule's jitter).
    """
    due, skipped = due_sources(sources, states, now, cycle_minutes=policy.cycle_minutes)
    if not policy.adaptive:
        return due, skipped
    slack = timedelta(minutes=policy.cycle_minutes / 2)
    polled: list[Source] = []
    for source in due:
        state = states.get(source.name)
        at = NEVER if state is None else next_poll_at(state, source, policy, incident=incident)
        if at <= now + slack:
            polled.append(source)
        else:
            minutes = (at - now).total_seconds() / 60
            skipped[source.name] = f"adaptive polling: next poll in {minutes:.0f} min"
    return polled, skipped


def full_fetch_due(state: SourceState | None, now: datetime, policy: PollPolicy) -> bool:
    """Whether this fetch goes without validators and is parsed whatever its hash."""
    if state is None or state.full_fetch_at is None:
        return True
    return now - state.full_fetch_at >= timedelta(hours=policy.full_fetch_hours)


def fetch_states(
    due: Sequence[Source],
    states: Mapping[str, SourceState],
    now: datetime,
    policy: PollPolicy,
) -> dict[str, SourceState]:
    """The states the fetch is given: a source due a full fetch goes without its validators."""
    given = dict(states)
    if not policy.adaptive:
        return given
    for source in due:
        state = states.get(source.name)
        if state is not None and full_fetch_due(state, now, policy):
            given[source.name] = replace(state, etag=None, last_modified=None)
    return given


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _http_date(value: str) -> datetime | None:
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def server_floor_s(result: FetchResult) -> float | None:
    """How long the server asked not to be polled again, in seconds (None: it did not ask):
    the longest of `Retry-After`, `Cache-Control: max-age` (unless `no-cache` or `no-store`),
    `Expires` (against the answer's `Date`) and an RSS channel's `<ttl>` (minutes)."""
    headers = result.headers
    date = _http_date(headers.get("date", "")) or result.started_at
    floors: list[float] = []
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        floors.append(float(retry_after))
    elif retry_after and (at := _http_date(retry_after)) is not None:
        floors.append((at - date).total_seconds())
    cache_control = headers.get("cache-control", "")
    if not re.search(r"no-cache|no-store", cache_control, re.IGNORECASE):
        if (found := _MAX_AGE.search(cache_control)) is not None:
            floors.append(float(found.group(1)))
        elif (expires := _http_date(headers.get("expires", ""))) is not None:
            floors.append((expires - date).total_seconds())
    if result.body is not None:
        head = result.body[:65536]
        item = _FIRST_ITEM.search(head)
        if (ttl := _TTL.search(head, 0, item.start() if item else len(head))) is not None:
            floors.append(int(ttl.group(1)) * 60.0)
    floor = max(floors, default=0.0)
    return floor if floor > 0 else None


def screen_fetched(
    fetched: Sequence[FetchResult],
    states: Mapping[str, SourceState],
    now: datetime,
    policy: PollPolicy,
) -> list[FetchResult]:
    """Each fetch with its body's hash and its server's floor; a 200 whose body hashes as the
    last one parsed becomes `not_modified` (no body), unless a full fetch was due.

    Off, the fetches as they are.
    """
    if not policy.adaptive:
        return list(fetched)
    screened: list[FetchResult] = []
    for result in fetched:
        floor = server_floor_s(result)
        if result.status != "ok" or result.body is None:
            screened.append(replace(result, server_floor_s=floor))
            continue
        digest = content_hash(result.body)
        state = states.get(result.source)
        if (
            state is not None
            and state.content_hash == digest
            and not full_fetch_due(state, now, policy)
        ):
            # Same bytes as the body last parsed: its validators lied. Counted as a 304.
            screened.append(
                replace(
                    result,
                    status="not_modified",
                    body=None,
                    bytes_read=len(result.body),
                    content_hash=digest,
                    server_floor_s=floor,
                )
            )
        else:
            screened.append(replace(result, content_hash=digest, server_floor_s=floor))
    return screened


def brought_news(
    outcome: SourceOutcome, freshness: EntryFreshness | None, previous: SourceState | None
) -> bool | None:
    """Whether a fetch brought anything new: False when it brought nothing, None when all it
    brought was new (more may have been published than the fetch shows), True otherwise."""
    if outcome.status == "not_modified":
        return False
    known = previous.newest_entry_at if previous is not None else None
    if freshness is None:  # no dated entry: a paginated API returns only what is new
        return outcome.items > 0
    if known is None:
        return True
    if freshness.newest_at <= known:
        return False
    if freshness.oldest_at is not None and freshness.oldest_at > known:
        return None
    return True


def next_polls(
    sources: Sequence[Source],
    outcomes: Sequence[SourceOutcome],
    freshness: Mapping[str, EntryFreshness],
    states: Mapping[str, SourceState],
    now: datetime,
    policy: PollPolicy,
) -> list[PollRecord]:
    """What adaptive polling keeps of each source fetched in this cycle (run at `now`).

    The interval learnt is that of ordinary times (no incident): incident mode tightens its
    cap when the next cycle plans (`next_poll_at`). Off, nothing.
    """
    if not policy.adaptive:
        return []
    by_name = {source.name: source for source in sources}
    records: list[PollRecord] = []
    for outcome in outcomes:
        source = by_name.get(outcome.fetch.source)
        if source is None:
            continue
        previous = states.get(source.name)
        fresh = freshness.get(source.name)
        low, high = poll_bounds(source, policy)
        interval = previous.poll_interval_s if previous and previous.poll_interval_s else low
        quiet = previous.quiet_polls if previous is not None else 0
        parsed_at: datetime | None = None
        if outcome.status != "error":
            gap = fresh.gap_s if fresh is not None and fresh.gap_s else None
            if gap is None and previous is not None:
                gap = previous.entry_gap_s
            rate = gap * RATE_SHARE if gap else low
            news = brought_news(outcome, fresh, previous)
            if news is None:
                interval, quiet = low, 0
            elif news:
                interval, quiet = rate, 0
            else:
                quiet = min(quiet + 1, MAX_QUIET_POLLS)
                interval = max(interval, rate) * QUIET_GROWTH
            interval = min(max(interval, low), high)
            if outcome.status == "ok":  # parsed (an API kind's pages too: no hash, no body)
                parsed_at = now
        floor = outcome.fetch.server_floor_s
        wait_until = now + timedelta(seconds=floor) if floor else None
        history = replace(
            previous or SourceState(source.name),
            last_run_at=now,
            consecutive_failures=(
                (previous.consecutive_failures if previous else 0) + 1
                if outcome.status == "error"
                else 0
            ),
            poll_interval_s=interval,
            quiet_polls=quiet,
            server_wait_until=wait_until,
        )
        records.append(
            PollRecord(
                source=source.name,
                poll_interval_s=interval,
                quiet_polls=quiet,
                content_hash=outcome.fetch.content_hash if parsed_at else None,
                full_fetch_at=parsed_at,
                server_wait_until=wait_until,
                next_poll_at=next_poll_at(history, source, policy),
            )
        )
    return records
