"""`vigie sources test`: fetch every configured source once, as the watch cycle would, and say
what each gave, without storing anything.

The fetch, parse, normalise and match steps are the watch cycle's own (`tasks.collect.fetch`,
`tasks.collect.sources`, `tasks.collect.match`), with the same bounds (`[collection]`: concurrency,
per host,
timeouts, size cap), always in this process (never on `collection.dask_address`, so that a test
needs no cluster and no Prefect). Nothing is remembered: no conditional-GET validators or
markers are read or written (every source is asked for its whole document), the warehouse is
never opened, and health states stay as they are. Sources with `poll_minutes` or backing off
are fetched anyway.

Feed text is untrusted: what reaches the terminal (source names, failure reasons) is one line,
without control characters, bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from tasks.collect.fetch import NO_STEP_DEADLINE, collect_sources, fetch_sources
from tasks.collect.health import entry_freshness
from tasks.notify.emails import header_safe
from vigie.errors import ConfigError
from vigie.matching import match_mentions
from vigie.models import FetchResult
from vigie.settings import Settings, Source

CheckStatus = Literal["ok", "empty", "partial", "failed", "not a feed"]
# Statuses that make the command exit 1: the source gives the watch nothing usable.
FAILING: frozenset[str] = frozenset({"failed", "not a feed"})
MAX_REASON_CHARS = 160
NAME_COLUMN = 28
REASON_COLUMN = 60


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """What one source gave when fetched once.

    `items` are the entries read and normalised; `matched` how many of them the configured
    watch queries keep; `newest_at` the date of the newest entry that carries one.
    """

    name: str
    kind: str
    url: str
    status: CheckStatus
    http_status: int | None
    items: int
    matched: int
    newest_at: datetime | None
    reason: str | None
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "http_status": self.http_status,
            "items": self.items,
            "matched": self.matched,
            "newest_at": self.newest_at.isoformat() if self.newest_at else None,
            "reason": self.reason,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True, slots=True)
class SourcesTest:
    checks: tuple[SourceCheck, ...]
    duration_s: float

    @property
    def failing(self) -> list[SourceCheck]:
        return [c for c in self.checks if c.status in FAILING]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": [c.as_dict() for c in self.checks],
            "total": len(self.checks),
            "ok": len(self.checks) - len(self.failing),
            "failed": len(self.failing),
            "items": sum(c.items for c in self.checks),
            "matched": sum(c.matched for c in self.checks),
            "duration_s": round(self.duration_s, 3),
            "stored": False,
        }


def select_sources(sources: Sequence[Source], names: Sequence[str]) -> list[Source]:
    """The sources named (all of them when `names` is empty), in configuration order.

    Raises:
        ConfigError: a name is not a configured source (the message lists a few that are).
    """
    if not names:
        return list(sources)
    known = {s.name for s in sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(repr(s.name) for s in sources[:10])
        more = f" and {len(sources) - 10} more" if len(sources) > 10 else ""
        raise ConfigError(
            f"no source named {header_safe(unknown[0], 120)!r} in the configuration "
            f"(sources: {shown}{more}; `vigie check` lists them)"
        )
    wanted = set(names)
    return [s for s in sources if s.name in wanted]


def check_source(
    source: Source, fetched: FetchResult, settings: Settings, *, collected_at: datetime
) -> SourceCheck:
    """Parse, normalise and match what one fetch gave, as the watch cycle does, and judge it.

    `failed`: no usable answer (network, timeout, HTTP error, size cap); `not a feed`: an RSS,
    Atom or RDF address answered with something else (an HTML page); `partial`: some pages were
    read and a later one failed; `empty`: read, with no entry. API kinds parse each page as it
    comes (`tasks.collect.sources`), so one that answers with something else (`not JSON`) is
    `failed`, with the HTTP status it answered.
    """
    mentions, outcomes = collect_sources(
        [source],
        [fetched],
        collected_at=collected_at,
        max_entries=settings.collection.max_entries,
    )
    outcome = outcomes[0]
    reason = header_safe(outcome.error, MAX_REASON_CHARS) if outcome.error else None
    status: CheckStatus
    if fetched.status == "error":
        status = "failed"
    elif outcome.status == "error":
        status = "not a feed"
    elif outcome.error:
        status = "partial"
    elif outcome.items == 0:
        status = "empty"
    else:
        status = "ok"
    matched = match_mentions(mentions, settings.watch) if mentions else []
    freshness = entry_freshness(mentions).get(source.name)
    return SourceCheck(
        name=source.name,
        kind=source.kind,
        url=source.url,
        status=status,
        http_status=fetched.http_status,
        items=outcome.items,
        matched=len(matched),
        newest_at=freshness.newest_at if freshness else None,
        reason=reason,
        duration_s=fetched.duration_s,
    )


def check_sources(
    settings: Settings,
    names: Sequence[str] = (),
    *,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> SourcesTest:
    """Fetch the configured sources (or those named) once, concurrently within `[collection]`'s
    bounds, and check each. Stores nothing and reads no remembered state.

    Raises:
        ConfigError: a name given is not a configured source.
    """
    sources = select_sources(settings.sources, names)
    t0 = time.monotonic()
    # Every source is tried, however many: a test defers none (each keeps its deadline_s).
    fetched = fetch_sources(
        sources, {}, collection=settings.collection, progress=progress, ends_at=NO_STEP_DEADLINE
    )
    collected_at = now or datetime.now(UTC)
    checks = tuple(
        check_source(source, result, settings, collected_at=collected_at)
        for source, result in zip(sources, fetched, strict=True)
    )
    return SourcesTest(checks, time.monotonic() - t0)


def _cell(value: str, width: int) -> str:
    return header_safe(value, width).ljust(width)


def render_table(report: SourcesTest) -> list[str]:
    """The report as aligned lines for a terminal, then one line of conclusion that says what
    to do next when sources failed."""
    header = (
        f"{'SOURCE':<{NAME_COLUMN}} {'KIND':<11} {'STATUS':<10} {'HTTP':>4} {'ITEMS':>5} "
        f"{'MATCH':>5} {'NEWEST (UTC)':<16}  REASON"
    )
    lines = [header]
    for c in report.checks:
        newest = f"{c.newest_at.astimezone(UTC):%Y-%m-%d %H:%M}" if c.newest_at else "-"
        lines.append(
            f"{_cell(c.name, NAME_COLUMN)} {c.kind:<11} {c.status:<10} "
            f"{c.http_status if c.http_status is not None else '-':>4} {c.items:>5} "
            f"{c.matched:>5} {newest:<16}  {header_safe(c.reason or '', REASON_COLUMN)}".rstrip()
        )
    lines.append(conclusion(report))
    return lines


def conclusion(report: SourcesTest) -> str:
    """One line: how many sources answered, what they gave, and what to do about failures."""
    total = len(report.checks)
    items = sum(c.items for c in report.checks)
    matched = sum(c.matched for c in report.checks)
    failing = report.failing
    if not failing:
        return (
            f"All {total} source{'s' if total != 1 else ''} answered: {items} items, {matched} "
            f"match the watch queries ({report.duration_s:.1f} s; nothing was stored)."
        )
    names = ", ".join(header_safe(c.name, 40) for c in failing[:3])
    if len(failing) > 3:
        names += f" and {len(failing) - 3} more"
    return (
        f"{len(failing)} of {total} sources FAILED ({names}): check each url and kind with "
        "`vigie check`, open the url in a browser, then `vigie sources test --source NAME`."
    )
