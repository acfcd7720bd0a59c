"""Adaptive polling (tasks/collect/schedule.py): when a source is due next, what a fetch
teaches, and which fetches count as unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tasks.collect.fetch import due_sources
from tasks.collect.schedule import (
    NEVER,
    PollPolicy,
    due_for_polling,
    fetch_states,
    next_poll_at,
    next_polls,
    poll_bounds,
    poll_policy,
    screen_fetched,
    server_floor_s,
)
from tests.configs import MINIMAL_TOML, settings_from
from vigie.models import EntryFreshness, FetchResult, SourceOutcome, SourceState
from vigie.settings import Source

NOW = datetime(2026, 5, 14, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(
    adaptive=True,
    cycle_minutes=10,
    min_minutes=10,
    max_minutes=240,
    tier1_max_minutes=30,
    incident_max_minutes=15,
    full_fetch_hours=24,
)
FIXED = PollPolicy(**{**{f: getattr(POLICY, f) for f in POLICY.__slots__}, "adaptive": False})
RSS = b"<rss><channel><title>T</title><ttl>90</ttl><item><title>a</title></item></channel></rss>"


def src(name: str = "s", *, tier: int = 3, poll_minutes: int | None = None) -> Source:
    return Source(
        name=name, url="https://example.org/feed.xml", tier=tier, poll_minutes=poll_minutes
    )


def fetch(
    name: str = "s",
    status: str = "ok",
    *,
    body: bytes | None = RSS,
    headers: dict[str, str] | None = None,
    http_status: int = 200,
) -> FetchResult:
    return FetchResult(
        source=name,
        url="https://example.org/feed.xml",
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        duration_s=0.1,
        http_status=http_status,
        body=body if status == "ok" else None,
        headers=headers or {},
    )


def learn(
    source: Source,
    previous: SourceState | None,
    result: FetchResult,
    *,
    freshness: EntryFreshness | None = None,
    items: int = 0,
    now: datetime = NOW,
    policy: PollPolicy = POLICY,
) -> SourceState:
    """One fetch through screening and recording: the state the next cycle reads."""
    states = {source.name: previous} if previous else {}
    (screened,) = screen_fetched([result], states, now, policy)
    outcome = SourceOutcome(screened, screened.status, items=items)
    fresh = {source.name: freshness} if freshness else {}
    (record,) = next_polls([source], [outcome], fresh, states, now, policy)
    base = previous or SourceState(source.name)
    return SourceState(
        source.name,
        last_run_at=now,
        consecutive_failures=0 if screened.status != "error" else base.consecutive_failures + 1,
        newest_entry_at=max(
            (t for t in (base.newest_entry_at, freshness and freshness.newest_at) if t),
            default=None,
        ),
        entry_gap_s=(freshness.gap_s if freshness and freshness.gap_s else base.entry_gap_s),
        poll_interval_s=record.poll_interval_s,
        quiet_polls=record.quiet_polls,
        content_hash=record.content_hash or base.content_hash,
        full_fetch_at=record.full_fetch_at or base.full_fetch_at,
        server_wait_until=record.server_wait_until,
    )


histories = st.builds(
    SourceState,
    name=st.just("s"),
    last_run_at=st.just(NOW),
    consecutive_failures=st.integers(0, 5),
    poll_interval_s=st.none() | st.floats(0, 30 * 86400),
    quiet_polls=st.integers(0, 40),
    server_wait_until=st.none()
    | st.timedeltas(timedelta(days=-2), timedelta(days=30)).map(lambda d: NOW + d),
)
sources = st.builds(
    src,
    tier=st.integers(1, 3),
    poll_minutes=st.none() | st.integers(1, 10080),
)
policies = st.builds(
    PollPolicy,
    adaptive=st.booleans(),
    cycle_minutes=st.just(10.0),
    min_minutes=st.floats(1, 60),
    max_minutes=st.floats(60, 10080),
    tier1_max_minutes=st.floats(1, 720),
    incident_max_minutes=st.floats(1, 120),
    full_fetch_hours=st.just(24.0),
)


@given(histories, sources, policies, st.booleans())
def test_the_next_poll_is_always_within_the_source_bounds(
    history: SourceState, source: Source, policy: PollPolicy, incident: bool
) -> None:
    low, high = poll_bounds(source, policy, incident=incident)
    at = next_poll_at(history, source, policy, incident=incident)
    assert NOW + timedelta(seconds=low) <= at <= NOW + timedelta(seconds=high)
    assert low >= policy.min_minutes * 60 and low >= (source.poll_minutes or 0) * 60


@given(histories, policies, st.booleans())
def test_a_tier1_source_is_never_polled_less_often_than_its_cap(
    history: SourceState, policy: PollPolicy, incident: bool
) -> None:
    major = src(tier=1)
    cap = max(policy.tier1_max_minutes, policy.min_minutes)
    if incident:
        cap = max(min(cap, policy.incident_max_minutes), policy.min_minutes)
    assert next_poll_at(history, major, policy, incident=incident) <= NOW + timedelta(minutes=cap)


@given(st.integers(1, 40 * 86400), st.sampled_from([429, 503]), st.integers(1, 3))
def test_retry_after_is_honoured_up_to_the_maximum(seconds: int, status: int, tier: int) -> None:
    source = src(tier=tier)
    refused = fetch(
        status="error", headers={"retry-after": str(seconds)}, http_status=status, body=None
    )
    state = learn(source, SourceState("s", last_run_at=NOW - timedelta(hours=1)), refused)
    _, high = poll_bounds(source, POLICY)
    wait = timedelta(seconds=min(seconds, high))
    assert next_poll_at(state, source, POLICY) >= NOW + wait
    later = NOW + wait - timedelta(minutes=POLICY.cycle_minutes)
    due, skipped = due_for_polling([source], {"s": state}, later, POLICY)
    assert due == [] and "s" in skipped


def test_retry_after_as_a_date_counts_from_the_answers_date() -> None:
    answered = "Thu, 14 May 2026 12:00:00 GMT"
    result = fetch(
        status="error",
        headers={"retry-after": "Thu, 14 May 2026 13:30:00 GMT", "date": answered},
    )
    assert server_floor_s(result) == 5400


def test_cache_headers_and_ttl_are_lower_bounds() -> None:
    plain = b"<rss/>"
    cache = {"cache-control": "public, max-age=3600"}
    assert server_floor_s(fetch(headers=cache, body=plain)) == 3600
    assert server_floor_s(fetch(headers=cache, body=RSS)) == 5400  # the longest: the <ttl>
    no_cache = {"cache-control": "no-cache, max-age=3600"}
    assert server_floor_s(fetch(headers=no_cache, body=plain)) is None
    expires = {"expires": "Thu, 14 May 2026 14:00:00 GMT", "date": "Thu, 14 May 2026 12:00:00 GMT"}
    assert server_floor_s(fetch(headers=expires, body=b"<rss/>")) == 7200
    assert server_floor_s(fetch(body=RSS)) == 90 * 60  # the channel's <ttl>, in minutes
    in_item = b"<rss><channel><item><description><ttl>900</ttl></description></item></channel>"
    assert server_floor_s(fetch(body=in_item)) is None  # only the channel's own
    assert server_floor_s(fetch(body=b"<rss/>")) is None


def test_a_cache_lifetime_beyond_the_maximum_is_capped() -> None:
    source = src()
    a_week = fetch(headers={"cache-control": "max-age=604800"}, body=b"<rss/>")
    state = learn(source, None, a_week)
    assert next_poll_at(state, source, POLICY) == NOW + timedelta(minutes=POLICY.max_minutes)


def test_fetches_that_bring_nothing_new_stretch_the_interval_up_to_the_maximum() -> None:
    source = src()
    newest = NOW - timedelta(hours=3)
    first = EntryFreshness("s", newest, 3600.0, newest - timedelta(days=2))
    state = learn(source, None, fetch(body=b"<rss>1</rss>"), freshness=first, items=50)
    assert state.poll_interval_s == 1800  # half the usual gap between entries
    intervals = []
    now = NOW
    for _ in range(8):
        now += timedelta(seconds=state.poll_interval_s or 0)
        state = learn(source, state, fetch("s", "not_modified", http_status=304), now=now)
        intervals.append(state.poll_interval_s)
    assert intervals[:3] == [2700, 4050, 6075]
    assert intervals[-1] == POLICY.max_minutes * 60
    assert state.quiet_polls == 8


def test_a_fetch_whose_every_entry_is_new_brings_the_minimum_back() -> None:
    """Everything new: more may have been published than the feed shows, poll again soon."""
    source = src()
    stretched = SourceState(
        "s",
        last_run_at=NOW - timedelta(hours=4),
        newest_entry_at=NOW - timedelta(days=3),
        entry_gap_s=86400.0,
        poll_interval_s=14400.0,
        quiet_polls=6,
        full_fetch_at=NOW - timedelta(hours=4),
    )
    burst = EntryFreshness("s", NOW, 120.0, NOW - timedelta(hours=1))
    state = learn(source, stretched, fetch(body=b"<rss>burst</rss>"), freshness=burst, items=30)
    assert state.poll_interval_s == POLICY.min_minutes * 60
    assert state.quiet_polls == 0
    assert next_poll_at(state, source, POLICY) == NOW + timedelta(minutes=10)


def test_a_source_publishing_every_two_hours_is_polled_every_hour() -> None:
    source = src()
    known = SourceState(
        "s", last_run_at=NOW - timedelta(hours=1), newest_entry_at=NOW - timedelta(hours=2)
    )
    fresh = EntryFreshness("s", NOW - timedelta(minutes=5), 7200.0, NOW - timedelta(days=4))
    state = learn(source, known, fetch(body=b"<rss>2</rss>"), freshness=fresh, items=50)
    assert next_poll_at(state, source, POLICY) == NOW + timedelta(hours=1)
    assert next_poll_at(state, src(tier=1), POLICY) == NOW + timedelta(minutes=30)
    assert next_poll_at(state, source, POLICY, incident=True) == NOW + timedelta(minutes=15)


def test_a_200_with_the_body_last_parsed_counts_as_unchanged() -> None:
    source = src()
    state = learn(source, None, fetch(body=RSS))
    assert state.content_hash is not None and state.full_fetch_at == NOW
    later = NOW + timedelta(hours=1)
    (same,) = screen_fetched([fetch(body=RSS)], {"s": state}, later, POLICY)
    assert same.status == "not_modified" and same.body is None and same.http_status == 200
    (changed,) = screen_fetched([fetch(body=RSS + b" ")], {"s": state}, later, POLICY)
    assert changed.status == "ok" and changed.body is not None


def test_a_full_fetch_goes_without_validators_and_is_parsed_whatever_its_hash() -> None:
    source = src()
    state = learn(source, None, fetch(body=RSS))
    state = SourceState(**{**{f: getattr(state, f) for f in state.__slots__}, "etag": '"v1"'})
    a_day_later = NOW + timedelta(hours=24)
    given_states = fetch_states([source], {"s": state}, a_day_later, POLICY)
    assert given_states["s"].etag is None
    (parsed,) = screen_fetched([fetch(body=RSS)], {"s": state}, a_day_later, POLICY)
    assert parsed.status == "ok"
    within = NOW + timedelta(hours=23)
    assert fetch_states([source], {"s": state}, within, POLICY)["s"].etag == '"v1"'


def test_off_the_cycle_is_as_it_was() -> None:
    many = [src("a"), src("b", poll_minutes=60), src("c")]
    states = {
        "a": SourceState("a", last_run_at=NOW - timedelta(minutes=10), poll_interval_s=86400.0),
        "b": SourceState("b", last_run_at=NOW - timedelta(minutes=30)),
    }
    assert due_for_polling(many, states, NOW, FIXED) == due_sources(
        many, states, NOW, cycle_minutes=10
    )
    fetched = [fetch("a"), fetch("c", headers={"retry-after": "600"})]
    assert screen_fetched(fetched, {}, NOW, FIXED) == fetched
    outcomes = [SourceOutcome(f, f.status) for f in fetched]
    assert next_polls(many, outcomes, {}, {}, NOW, FIXED) == []


def test_a_source_never_polled_is_due_at_once() -> None:
    assert next_poll_at(SourceState("s"), src(), POLICY) == NEVER
    due, _ = due_for_polling([src()], {}, NOW, POLICY)
    assert [s.name for s in due] == ["s"]


def test_the_policy_resolves_its_unset_bounds(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + "\n[collection]\nadaptive_polling = true\n")
    policy = poll_policy(settings)
    assert policy.adaptive
    assert policy.min_minutes == settings.schedule.watch_every_minutes
    assert policy.tier1_max_minutes == settings.detection.window_minutes / 2


def test_a_source_read_page_by_page_keeps_its_validators_between_full_fetches() -> None:
    """An API kind's fetch carries entries, not a body: parsed all the same, so the next
    fetch stays conditional."""
    source = src()
    pages = FetchResult("s", source.url, "ok", NOW, 0.1, http_status=200, entries=(), etag='"p"')
    state = learn(source, None, pages)
    assert state.full_fetch_at == NOW and state.content_hash is None
    state = SourceState(**{**{f: getattr(state, f) for f in state.__slots__}, "etag": '"p"'})
    later = NOW + timedelta(hours=1)
    assert fetch_states([source], {"s": state}, later, POLICY)["s"].etag == '"p"'
