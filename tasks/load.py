"""Prefect tasks around the warehouse: each opens a short connection, calls `Store`, closes.

Short connections keep DuckDB's cross-process file lock free between steps (STACK.md gotcha 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.alerts import AlertChanges, raise_alerts
from tasks.detect import TopicAssessment, assess_watches
from tasks.notify import MAX_ATTEMPTS, DeliveryReport, deliver_outbox
from tasks.stories import assign_stories
from vigie.models import (
    Mention,
    QuarantinedMention,
    SourceOutcome,
    SourceState,
    StorySignature,
)
from vigie.settings import Secrets, Settings, Source, Watch
from warehouse.connection import open_warehouse
from warehouse.store import LoadResult, Store

# Copies of a story published more than a week after it start a new story.
STORY_MEMORY = timedelta(days=7)


@task(name="prepare-warehouse", cache_policy=NO_CACHE)
def prepare_warehouse(
    path: Path, cycle_id: str, started_at: datetime, flow_run_id: str | None
) -> dict[str, SourceState]:
    """Migrate the warehouse, open the cycle's record, return each source's HTTP validators."""
    with open_warehouse(path) as con:
        store = Store(con)
        store.begin_cycle(cycle_id, started_at, flow_run_id)
        return store.source_states()


@task(name="cluster-stories", cache_policy=NO_CACHE)
def cluster_stories_task(
    path: Path, mentions: Sequence[Mention], now: datetime
) -> tuple[list[Mention], list[StorySignature]]:
    """Group near-duplicate and syndicated copies with the stories of the last week."""
    with open_warehouse(path) as con:
        recent = Store(con).recent_story_signatures(now - STORY_MEMORY)
    return assign_stories(mentions, recent)


@task(name="load-warehouse", cache_policy=NO_CACHE)
def load_cycle_task(
    path: Path,
    cycle_id: str,
    sources: Sequence[Source],
    outcomes: Sequence[SourceOutcome],
    mentions: Sequence[Mention],
    quarantined: Sequence[QuarantinedMention],
    now: datetime,
    signatures: Sequence[StorySignature] = (),
) -> LoadResult:
    """Load the cycle's mentions, quarantine, story signatures and source runs at once."""
    with open_warehouse(path) as con:
        return Store(con).load_cycle(
            cycle_id, sources, outcomes, mentions, quarantined, now, signatures
        )


@task(name="detect", cache_policy=NO_CACHE)
def detect_task(
    path: Path, watches: Sequence[Watch], settings: Settings, now: datetime
) -> list[TopicAssessment]:
    """Assess each watch topic's current window: volume against its seasonal baseline,
    negativity, crisis vocabulary, pick-up by major media and spread."""
    with open_warehouse(path) as con:
        return assess_watches(
            Store(con),
            [w.name for w in watches],
            settings.detection,
            now,
            sources=[s.name for s in settings.sources],
            min_coverage=settings.health.min_coverage,
        )


@task(name="raise-alerts", cache_policy=NO_CACHE)
def raise_alerts_task(
    path: Path,
    settings: Settings,
    assessments: Sequence[TopicAssessment],
    now: datetime,
    run_url: str | None,
) -> AlertChanges:
    """Open, escalate, update or resolve each topic's alert (emails go to the outbox)."""
    with open_warehouse(path) as con:
        return raise_alerts(Store(con), settings, assessments, now=now, run_url=run_url)


def send_pending(path: Path, settings: Settings, secrets: Secrets) -> DeliveryReport:
    """Send every pending email with yagmail, marking each sent (or failed) as it goes.

    The warehouse is not held while SMTP talks (that can take seconds): it is opened briefly to
    read the outbox, then once per message to record what happened to it. Plain code, so that
    the command line (`vigie digest`) sends the same way as the watch cycle.
    """
    with open_warehouse(path) as con:
        pending = Store(con).pending_messages(MAX_ATTEMPTS)

    def mark_sent(message_id: str) -> None:
        with open_warehouse(path) as con:
            Store(con).mark_sent(message_id, datetime.now(UTC))

    def mark_failed(message_id: str, reason: str) -> None:
        with open_warehouse(path) as con:
            Store(con).mark_failed(message_id, reason, datetime.now(UTC))

    return deliver_outbox(
        pending,
        email=settings.email,
        secrets=secrets,
        mark_sent=mark_sent,
        mark_failed=mark_failed,
    )


@task(name="send-outbox", cache_policy=NO_CACHE)
def send_outbox_task(path: Path, settings: Settings, secrets: Secrets) -> DeliveryReport:
    """Send every pending email (`send_pending`)."""
    return send_pending(path, settings, secrets)


@task(name="finish-cycle", cache_policy=NO_CACHE)
def finish_cycle_task(
    path: Path, cycle_id: str, finished_at: datetime, summary: dict[str, Any]
) -> None:
    """Record the cycle's summary, which `vigie status` reads."""
    with open_warehouse(path) as con:
        Store(con).finish_cycle(cycle_id, finished_at, summary)


@task(name="apply-retention", cache_policy=NO_CACHE)
def apply_retention_task(path: Path, raw_text_days: int, now: datetime) -> tuple[int, int]:
    """Erase raw text older than the retention policy; aggregates are kept."""
    if raw_text_days <= 0:
        return 0, 0
    with open_warehouse(path) as con:
        return Store(con).apply_retention(now - timedelta(days=raw_text_days))
