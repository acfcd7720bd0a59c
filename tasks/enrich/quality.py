"""Quality of the watch's data: degraded sources after each batch, and `vigie quality`'s report
on recent data (drift that no single batch shows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.enrich.validate import (
    ExpectationCheck,
    ValidationOutcome,
    degraded_verdicts,
    quarantine_shares,
    run_suite,
)
from tasks.notify.emails import quality_notice
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import DRILL_SOURCES, Store

# Drill mentions are rehearsals, not the watch (migration 012).
_REAL = f"source NOT IN {DRILL_SOURCES}"


def flag_degraded_sources(
    store: Store, settings: Settings, outcome: ValidationOutcome, *, now: datetime
) -> list[str]:
    """Mark sources degraded or recovered from this batch; queue one notice per change."""
    shares = quarantine_shares(outcome)
    verdicts = degraded_verdicts(
        shares,
        max_share=settings.quality.max_quarantine_share,
        min_rows=settings.quality.min_rows,
    )
    changes: list[str] = []
    # Only the sources whose verdict changes are written (one transaction each, with its notice).
    current = store.degraded_states(list(verdicts))
    for source, degraded in sorted(verdicts.items()):
        if current.get(source, degraded) == degraded:
            continue
        with store.transaction():
            transition = store.set_degraded(source, degraded, now)
            if transition is None:
                continue
            failed, total = shares[source]
            reasons = sorted(
                {r for q in outcome.quarantined if q.mention.source == source for r in q.reasons}
            )
            store.queue(
                quality_notice(
                    settings,
                    source=source,
                    transition=transition,
                    failed=failed,
                    total=total,
                    reasons=reasons,
                    now=now,
                ),
                now,
            )
        changes.append(f"{source}: {transition}")
    return changes


@dataclass
class QualityReport:
    since: datetime
    mentions: int = 0
    undetermined_language: float = 0.0
    empty_title: float = 0.0
    empty_summary: float = 0.0
    per_source: list[dict[str, Any]] = field(default_factory=list)
    duplicate_urls: int = 0
    duplicate_titles: int = 0
    checks: list[ExpectationCheck] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "mentions": self.mentions,
            "undetermined_language": self.undetermined_language,
            "empty_title": self.empty_title,
            "empty_summary": self.empty_summary,
            "per_source": self.per_source,
            "duplicate_urls": self.duplicate_urls,
            "duplicate_titles": self.duplicate_titles,
            "checks": [
                {"expectation": c.label, "success": c.success, "unexpected": c.unexpected}
                for c in self.checks
            ],
        }


def quality_report(
    store: Store, *, since: datetime, now: datetime, settings: Settings
) -> QualityReport:
    """Re-check recent mentions with the suite and measure what drifts over many batches."""
    con = store.con
    report = QualityReport(since=since)
    total, undetermined, empty_title, empty_summary = con.execute(
        "SELECT count(*), count(*) FILTER (language IS NULL), count(*) FILTER (title = ''), "
        f"count(*) FILTER (summary = '') FROM mentions WHERE collected_at >= ? AND {_REAL}",
        [since],
    ).fetchall()[0]
    report.mentions = int(total)
    if total:
        report.undetermined_language = round(undetermined / total, 4)
        report.empty_title = round(empty_title / total, 4)
        report.empty_summary = round(empty_summary / total, 4)
    rows = con.execute(
        "WITH loaded AS (SELECT source, count(*) AS n FROM mentions WHERE collected_at >= ? "
        f"AND {_REAL} GROUP BY source), refused AS (SELECT source, count(*) AS n "
        f"FROM quarantine WHERE quarantined_at >= ? AND {_REAL} GROUP BY source) "
        "SELECT coalesce(l.source, r.source), coalesce(l.n, 0), coalesce(r.n, 0), "
        "s.degraded_since FROM loaded l FULL JOIN refused r ON l.source = r.source "
        "LEFT JOIN sources s ON s.name = coalesce(l.source, r.source) ORDER BY 1",
        [since, since],
    ).fetchall()
    for source, loaded, refused, degraded_since in rows:
        seen = loaded + refused
        report.per_source.append(
            {
                "source": source,
                "loaded": int(loaded),
                "quarantined": int(refused),
                "quarantined_share": round(refused / seen, 4) if seen else 0.0,
                "degraded_since": degraded_since.isoformat() if degraded_since else None,
            }
        )
    report.duplicate_urls = int(
        con.execute(
            "SELECT count(*) FROM (SELECT url FROM mentions WHERE collected_at >= ? AND url <> '' "
            f"AND {_REAL} GROUP BY url HAVING count(*) > 1)",
            [since],
        ).fetchall()[0][0]
    )
    report.duplicate_titles = int(
        con.execute(
            "SELECT count(*) FROM (SELECT source, title FROM mentions WHERE collected_at >= ? "
            f"AND title <> '' AND {_REAL} GROUP BY source, title, date_trunc('day', published_at) "
            "HAVING count(*) > 1)",
            [since],
        ).fetchall()[0][0]
    )
    if total:
        import pandas as pd

        frame = con.execute(
            "SELECT mention_id, source, url, title, summary, published_at, platform, language, "
            f"tier, sentiment FROM mentions WHERE collected_at >= ? AND title <> '' AND {_REAL}",
            [since],
        ).df()
        if len(frame):
            horizon = timedelta(days=settings.detection.horizon_days)
            tolerance = timedelta(minutes=settings.detection.future_tolerance_minutes)
            report.checks, _ = run_suite(
                "mentions",
                frame,
                {
                    "min_published": pd.Timestamp(now - horizon),
                    "max_published": pd.Timestamp(now + tolerance),
                },
            )
    return report


@task(name="flag-degraded-sources", cache_policy=NO_CACHE)
def flag_degraded_sources_task(
    path: Any, settings: Settings, outcome: ValidationOutcome, now: datetime
) -> list[str]:
    """Mark sources whose batch mostly failed validation; tell the operators once."""
    with open_warehouse(path) as con:
        return flag_degraded_sources(Store(con), settings, outcome, now=now)
