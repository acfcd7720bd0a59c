"""Prefect tasks around the warehouse: each opens a short connection, calls `Store`, closes.

Short connections keep DuckDB's cross-process file lock free between steps (STACK.md gotcha 11).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_UI_URL

from tasks.detect.breaking import StoryAssessment, assess_breaking_stories
from tasks.detect.volume import TopicAssessment, assess_watches, bucket_ceiling
from tasks.enrich.stories import assign_stories
from tasks.notify.alerts import AlertChanges, raise_alerts
from tasks.notify.channels import deliver_channels
from tasks.notify.delivery import DeliveryReport, deliver
from tasks.notify.escalation import escalate_unacknowledged
from tasks.notify.rendering import rebase_link
from vigie.models import (
    CycleSummary,
    Mention,
    PollRecord,
    QuarantinedMention,
    SourceOutcome,
    SourceState,
    StorySignature,
)
from vigie.settings import Secrets, Settings, Source, Watch
from warehouse.channel_outbox import ChannelOutbox
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
    if not mentions:
        return [], []  # an unchanged re-poll: the warehouse need not even be opened
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
    polls: Sequence[PollRecord] = (),
) -> LoadResult:
    """Load the cycle's mentions, quarantine, story signatures, source runs and what adaptive
    polling learnt at once."""
    with open_warehouse(path) as con:
        return Store(con).load_cycle(
            cycle_id, sources, outcomes, mentions, quarantined, now, signatures, polls
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


@task(name="detect-breaking-stories", cache_policy=NO_CACHE)
def detect_stories_task(
    path: Path, watches: Sequence[Watch], settings: Settings, now: datetime
) -> list[StoryAssessment]:
    """Find the stories that spread fast: distinct sources in the window against the usual
    spread of each topic's stories (and follow the stories whose alert is open)."""
    end = bucket_ceiling(now)
    with open_warehouse(path) as con:
        return assess_breaking_stories(
            Store(con),
            [w.name for w in watches],
            settings.detection,
            window_start=end - timedelta(minutes=settings.detection.window_minutes),
            window_end=end,
        )


ACK_DEPLOYMENT = "acknowledge-alert/acknowledge-alert"


def prefect_ack_link(config_path: str, public_ui: str | None = None) -> Callable[[str], str | None]:
    """Start, for each new alert, a run of the `acknowledge-alert` deployment that waits for
    a name, and give its page in the Prefect UI (at `public_ui`, `[prefect] public_ui_url`,
    when set); None where that deployment is not served (then the email gives `vigie ack`)."""

    def link(alert_id: str) -> str | None:
        from prefect.deployments import run_deployment
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        try:
            run = run_deployment(
                ACK_DEPLOYMENT,
                parameters={"alert_id": alert_id, "config_path": config_path},
                timeout=0,
                as_subflow=False,
            )
        except (ObjectNotFound, PrefectHTTPStatusError, OSError):
            return None
        ui = public_ui or PREFECT_UI_URL.value()
        run_id = getattr(run, "id", None)  # the sync call returns the FlowRun itself
        return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None

    return link


@task(name="raise-alerts", cache_policy=NO_CACHE)
def raise_alerts_task(
    path: Path,
    settings: Settings,
    assessments: Sequence[TopicAssessment],
    now: datetime,
    run_url: str | None,
    config_path: str | None = None,
    drill: bool = False,
    stories: Sequence[StoryAssessment] = (),
) -> AlertChanges:
    """Open, escalate, update or resolve each topic's and each breaking story's alert
    (emails go to the outbox; their Prefect links at `[prefect] public_ui_url` when set)."""
    public_ui = settings.prefect.public_ui_url
    with open_warehouse(path) as con:
        return raise_alerts(
            Store(con),
            settings,
            assessments,
            now=now,
            run_url=rebase_link(run_url, local_ui=PREFECT_UI_URL.value(), public_ui=public_ui),
            ack_link=prefect_ack_link(config_path, public_ui) if config_path else None,
            drill=drill,
            stories=stories,
        )


@contextmanager
def _store_at(path: Path) -> Iterator[Store]:
    with open_warehouse(path) as con:
        yield Store(con)


def send_pending(
    path: Path, settings: Settings, secrets: Secrets, *, now: datetime | None = None
) -> DeliveryReport:
    """Send the outbox as it may go now (see `tasks.notify.delivery`), each message exactly once,
    then tell the chat, push and SMS channels of its people (`tasks.notify.channels`), each
    message once per channel.

    The warehouse is not held while SMTP or a channel talks (that can take seconds): it is
    opened briefly around each step.
    """
    now = now or datetime.now(UTC)
    report = deliver(
        email=settings.email,
        secrets=secrets,
        now=now,
        language=settings.organisation.language,
        timezone=settings.organisation.timezone,
        open_store=lambda: _store_at(path),
    )
    channels = deliver_channels(
        settings=settings, now=now, open_outbox=lambda: _channel_outbox_at(path)
    )
    report.channels_sent = channels.sent
    report.channels_failed = channels.failed
    return report


@contextmanager
def _channel_outbox_at(path: Path) -> Iterator[ChannelOutbox]:
    with open_warehouse(path) as con:
        yield ChannelOutbox(con)


@task(name="escalate", cache_policy=NO_CACHE)
def escalate_task(path: Path, settings: Settings, now: datetime) -> list[str]:
    """Pass every alert nobody acknowledged in time to the next level of the cell."""
    with open_warehouse(path) as con:
        return escalate_unacknowledged(Store(con), settings, now=now)


@task(name="send-outbox", cache_policy=NO_CACHE)
def send_outbox_task(path: Path, settings: Settings, secrets: Secrets) -> DeliveryReport:
    """Send every email that may go now; the rest waits in the outbox with its reason."""
    return send_pending(path, settings, secrets)


@task(name="finish-cycle", cache_policy=NO_CACHE)
def finish_cycle_task(
    path: Path, cycle_id: str, finished_at: datetime, summary: CycleSummary
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
