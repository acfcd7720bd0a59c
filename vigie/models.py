"""Typed records passed between the steps of a watch cycle.

fetch -> `FetchResult` -> parse -> `FeedEntry` -> normalise -> `Mention` -> match -> `Mention`
(with topics) -> validate -> load -> detect -> `VolumeSignal` -> alert -> `OutboxMessage`.
No bare dicts travel past the parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SourceStatus = Literal["ok", "not_modified", "error"]


@dataclass(frozen=True, slots=True)
class SourceState:
    """What is remembered of a source between cycles: HTTP validators for conditional GET,
    and the last run and failure streak that decide whether it is due (poll interval, back-off).
    """

    name: str
    etag: str | None = None
    last_modified: str | None = None
    last_run_at: datetime | None = None
    consecutive_failures: int = 0


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

    @property
    def size(self) -> int:
        return len(self.body) if self.body is not None else 0


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
class OutboxMessage:
    """An email waiting in the outbox; `message_id` is deterministic so a rerun cannot dupe it."""

    message_id: str
    kind: str
    recipients: tuple[str, ...]
    subject: str
    html: str
    alert_id: str | None = None


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
class StorySignature:
    """The MinHash signature of a story's first mention, to recognise its copies."""

    story_id: str
    signature: tuple[int, ...]
