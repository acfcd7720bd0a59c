"""Typed records passed between the steps of a watch cycle.

fetch -> `FetchResult` -> parse -> `FeedEntry` -> normalise -> `Mention` -> match -> `Mention`
(with topics) -> validate -> load -> detect -> `VolumeSignal` -> alert -> `OutboxMessage`.
No bare dicts travel past the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NotRequired, TypedDict

# deferred: not fetched this cycle because the fetch step reached its deadline first (not a
# failure: the source goes first next cycle, tasks/collect/fetch.py `fetch_sources`).
SourceStatus = Literal["ok", "not_modified", "error", "deferred"]
HealthState = Literal["ok", "failing", "not_a_feed", "silent"]


@dataclass(frozen=True, slots=True)
class SourceState:
    """What is remembered of a source between cycles: HTTP validators for conditional GET, for
    paginated APIs the marker of the newest item seen (an id, a timestamp), and the last run and
    failure streak that decide whether it is due (poll interval, back-off), and what adaptive
    polling learnt of it (tasks/collect/schedule.py)."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    marker: str | None = None
    last_run_at: datetime | None = None
    consecutive_failures: int = 0
    newest_entry_at: datetime | None = None
    entry_gap_s: float | None = None
    # The interval its publishing asks for (None: not learnt yet), the fetches in a row that
    # brought nothing new, the hash of the last body parsed and when a body was last parsed,
    # and the time before which its server asked not to be polled again.
    poll_interval_s: float | None = None
    quiet_polls: int = 0
    content_hash: str | None = None
    full_fetch_at: datetime | None = None
    server_wait_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What adaptive polling keeps of one source after a fetch (tasks/collect/schedule.py).

    `content_hash` and `full_fetch_at` None keep the stored ones (a 304 carries no body).
    """

    source: str
    poll_interval_s: float
    quiet_polls: int
    content_hash: str | None
    full_fetch_at: datetime | None
    server_wait_until: datetime | None
    next_poll_at: datetime


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one HTTP fetch of one source; `body` is None unless status is ok."""

    source: str
    url: str
    status: SourceStatus
    started_at: datetime
    duration_s: float
    http_status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    final_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    # API kinds (tasks/collect/sources.py) read several pages and parse each as it comes, since the
    # next page depends on it: they carry their entries, the marker to remember, and the bytes read.
    entries: tuple[FeedEntry, ...] | None = None
    marker: str | None = None
    pages: int = 0
    bytes_read: int = 0
    # A gdelt source's volume timeline: GDELT's own count of articles matching its query.
    volumes: tuple[OutsideVolume, ...] = ()
    # Adaptive polling (tasks/collect/schedule.py): the body's hash, and how long the server
    # asked not to be polled again (Retry-After, Cache-Control, Expires, RSS ttl).
    content_hash: str | None = None
    server_floor_s: float | None = None

    @property
    def size(self) -> int:
        if self.body is None:
            return self.bytes_read
        return len(self.body)


@dataclass(frozen=True, slots=True)
class OutsideVolume:
    """One bucket of an outside service's count of articles (GDELT's volume timeline)."""

    bucket_start: datetime
    value: int


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry as the parser read it, before any cleaning; times are UTC or None."""

    title: str
    link: str | None
    guid: str | None
    summary: str
    author: str | None
    published_at: datetime | None
    language: str | None
    reach: int | None = None  # followers, score, points or likes, where the API gives them


@dataclass(frozen=True, slots=True)
class Mention:
    """A cleaned, identified entry from one source; `topics` are the watches it matched."""

    mention_id: str
    source: str
    platform: str
    tier: int
    url: str
    title: str
    summary: str
    author: str | None
    published_at: datetime
    collected_at: datetime
    language: str | None
    story_id: str
    topics: tuple[str, ...] = ()
    sentiment: float | None = None
    reach: int | None = None
    # The other sources that carried the same item in this batch (merged duplicates).
    seen_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What one source gave in this cycle: recorded as a row of `source_runs`."""

    fetch: FetchResult
    status: SourceStatus
    items: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedMention:
    mention: Mention
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VolumeSignal:
    """The volume of one topic in the current window against its trailing baseline."""

    topic: str
    window_start: datetime
    window_end: datetime
    current: int
    baseline_median: float
    baseline_spread: float
    score: float
    z: float
    triggered: bool
    has_baseline: bool = True


@dataclass(frozen=True, slots=True)
class InlineImage:
    """An image shown inside an email's HTML as `<img src="cid:{cid}">` (never a remote URL)."""

    cid: str
    png: bytes


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """An email waiting in the outbox; `message_id` is deterministic so a rerun cannot dupe it.

    `text` is the plain-text alternative of `html`; `critical` mail (alerts, escalations) passes
    quiet hours and the per-recipient cap; `drill` mail belongs to an exercise.
    """

    message_id: str
    kind: str
    recipients: tuple[str, ...]
    subject: str
    html: str
    alert_id: str | None = None
    text: str = ""
    images: tuple[InlineImage, ...] = ()
    critical: bool = False
    drill: bool = False


@dataclass(frozen=True, slots=True)
class WindowMention:
    """What the signals need of one mention of the window."""

    source: str
    platform: str
    tier: int
    title: str
    summary: str
    sentiment: float | None
    story_id: str


@dataclass(frozen=True, slots=True)
class StoryCopy:
    """One source's copy of a story: `mention.source` is the source that carried it."""

    mention: WindowMention
    url: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class StorySignature:
    """The MinHash signature of a story's first mention, to recognise its copies."""

    story_id: str
    signature: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EntryFreshness:
    """How fresh one source's entries were in this cycle."""

    source: str
    newest_at: datetime
    gap_s: float | None  # median seconds between consecutive entries; None under 3 entries
    oldest_at: datetime | None = None  # the oldest dated entry of the fetch


@dataclass(frozen=True, slots=True)
class SourceCondition:
    """What `sources` remembers of one source, as the health verdict needs it."""

    name: str
    consecutive_failures: int
    last_error: str | None
    newest_entry_at: datetime | None
    entry_gap_s: float | None
    health: HealthState
    health_since: datetime | None
    # The last fetch that succeeded; None: the source has never answered.
    last_ok_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    state: HealthState
    reason: str


@dataclass(frozen=True, slots=True)
class HealthChange:
    source: str
    previous: HealthState
    verdict: HealthVerdict
    # What the verdict was made from: the notice tells "never answered" from "stopped".
    condition: SourceCondition


class TopicSummary(TypedDict):
    """One watch topic in a cycle's summary: its window and how it was judged."""

    mentions: int
    volume_score: float
    severity: float
    level: str
    contributions: dict[str, float]


class BreakingStorySummary(TypedDict):
    """A story spreading fast in a cycle's summary (tasks/detect/breaking.py), alerting or not."""

    story_id: str
    topic: str
    title: str
    sources: int
    needed: float
    level: str


class CycleSummary(TypedDict):
    """What one watch cycle did, as `vigie run --json` prints it and `cycles.summary` keeps it.

    `duration_s` is the collection's own time (first fetch to end of loading), `total_s` the
    whole cycle; `sources_failed` and `emails_failed` map a name or message id to its reason,
    `channels_failed` a "message_id@channel" (summaries from before channels lack both counts).
    """

    cycle_id: str
    duration_s: float
    total_s: float
    steps: dict[str, float]
    sources: int
    sources_ok: int
    sources_not_modified: int
    sources_failed: dict[str, str]
    sources_skipped: dict[str, str]
    # Not fetched: the fetch step reached its deadline first; not failures (go first next cycle).
    sources_deferred: NotRequired[dict[str, str]]
    entries_parsed: int
    collected: int
    matched: int
    quarantined: int
    new_mentions: int
    alerts_opened: list[str]
    alerts_escalated: list[str]
    alerts_updated: list[str]
    alerts_resolved: list[str]
    topics: dict[str, TopicSummary]
    breaking_stories: list[BreakingStorySummary]
    emails_sent: int
    emails_failed: dict[str, str]
    # Chat, push and SMS sends (tasks/notify/channels.py): "message_id@channel" of each one.
    channels_sent: NotRequired[int]
    channels_failed: NotRequired[dict[str, str]]
    failed_checks: list[str]
    quality_changes: list[str]
    health_changes: list[str]
    escalations: list[str]
