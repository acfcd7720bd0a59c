"""The operations the scheduled deployments and the command line share: queue a digest, escalate
and send, retention, daily export, checkpoint, replay; and the markdown the flows publish.

Plain functions first (the `vigie` commands and the tests call them), then the thin Prefect tasks
the flows in `flows/` wire. Every write is idempotent: a digest's message id names its period, an
export replaces its day's file whole, retention and checkpoint can run twice.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.detect.replay import ReplayedAlert, replay_history
from tasks.load import send_pending
from tasks.notify.delivery import DeliveryReport
from tasks.notify.digest import Digest, Period, build_digest, default_end, render_digest
from tasks.notify.escalation import escalate_unacknowledged
from tasks.notify.readiness import TeamOutcome, send_readiness
from tasks.publish.report import md_text
from tasks.publish.ui import publish_markdown, publish_progress, update_progress
from vigie.errors import ConfigError, WarehouseError
from vigie.models import OutboxMessage
from vigie.settings import Secrets, Settings
from warehouse.backup import backup_warehouse, checkpoint_warehouse, rotate_backups
from warehouse.connection import open_warehouse
from warehouse.store import Store

ExportFormat = Literal["parquet", "csv"]
# A replay reports every this share of its steps (20 updates of the progress artifact).
PROGRESS_EVERY = 0.05
MAX_ROWS = 100


def run_clock(now: datetime, scheduled: datetime | None) -> datetime:
    """The moment a run acts as: its scheduled time when that is later than `now`.

    A worker may start a run a few seconds before its scheduled time (prefetch); a readiness
    reminder due at 9:00 must not be judged at 8:59:55.
    """
    if scheduled is None:
        return now
    return max(now, scheduled.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class QueuedDigest:
    digest: Digest
    message: OutboxMessage
    already_queued: bool


def queue_digest(
    path: Path, settings: Settings, *, period: Period, end: datetime | None, now: datetime
) -> QueuedDigest:
    """Build the digest of the period ending at `end` (default: the last whole hour in the
    organisation's time zone) and queue it once; a second call queues nothing new."""
    end = end or default_end(now, settings.organisation.timezone)
    if end > now:
        raise ConfigError(
            "the digest's end is in the future: a digest covers a period that is over; give "
            "an end in the past, or none for the last whole hour"
        )
    with open_warehouse(path) as con:
        store = Store(con)
        digest = build_digest(store, settings, period=period, end=end)
        message = render_digest(digest, settings)
        already = store.outbox_has(message.message_id)
        if not already:
            store.queue(message, now)
    return QueuedDigest(digest, message, already)


def escalate_and_send(
    path: Path, settings: Settings, secrets: Secrets, *, now: datetime
) -> tuple[list[str], DeliveryReport]:
    """Pass unacknowledged alerts to the next level of the cell, then send the outbox."""
    with open_warehouse(path, lock_wait_s=30) as con:
        paged = escalate_unacknowledged(Store(con), settings, now=now)
    return paged, send_pending(path, settings, secrets, now=now)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cutoff: datetime | None  # None: retention.raw_text_days is 0, nothing is erased
    erased: int = 0
    dropped: int = 0

    def describe(self) -> str:
        if self.cutoff is None:
            return "retention.raw_text_days is 0: raw text is kept forever, nothing to prune"
        return (
            f"Raw text older than {self.cutoff:%Y-%m-%d} erased from {self.erased} mentions; "
            f"{self.dropped} quarantined records deleted; aggregates kept"
        )


def prune_raw_text(path: Path, raw_text_days: int, now: datetime) -> RetentionResult:
    """Apply the retention policy: erase raw text older than `raw_text_days`."""
    if raw_text_days <= 0:
        return RetentionResult(None)
    cutoff = now - timedelta(days=raw_text_days)
    with open_warehouse(path) as con:
        erased, dropped = Store(con).apply_retention(cutoff)
    return RetentionResult(cutoff, erased, dropped)


@dataclass(frozen=True, slots=True)
class DayExport:
    day: date
    path: Path
    mentions: int


def export_days(
    path: Path, folder: Path, *, days: int, today: date, fmt: ExportFormat = "parquet"
) -> list[DayExport]:
    """Write the mentions published on each of the `days` UTC days before `today` to
    `folder/mentions-YYYYMMDD.<fmt>`, each file replaced whole (a later run adds the mentions
    collected late)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with open_warehouse(path) as con:
        store = Store(con)
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            since = datetime.combine(day, time(), tzinfo=UTC)
            target = folder / f"mentions-{day:%Y%m%d}.{fmt}"
            partial = target.with_name(f".{target.name}.partial")
            count = store.export_mentions(
                partial, since=since, until=since + timedelta(days=1), fmt=fmt
            )
            os.replace(partial, target)
            written.append(DayExport(day, target, count))
    return written


def replay_configured(
    store: Store,
    settings: Settings,
    *,
    since: datetime,
    until: datetime,
    step: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ReplayedAlert]:
    """Replay detection over the configured watch topics and sources (`vigie replay`)."""
    if until <= since:
        raise ConfigError("until must come after since")
    return replay_history(
        store,
        [w.name for w in settings.watch],
        settings.detection,
        since=since,
        until=until,
        step=step or timedelta(minutes=settings.detection.window_minutes),
        progress=progress,
        sources=[s.name for s in settings.sources],
        min_coverage=settings.health.min_coverage,
    )


def replay_on_snapshot(
    settings: Settings,
    *,
    since: datetime,
    until: datetime,
    step: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ReplayedAlert]:
    """Replay on a consistent copy of the warehouse, so the watch keeps writing meanwhile (a
    replay of weeks takes minutes; DuckDB allows one process on the file at a time)."""
    if not settings.warehouse_path.exists():
        raise WarehouseError(
            f"there is no warehouse at {settings.warehouse_path} yet: nothing to replay; "
            "collect first (`vigie run --once`), or check warehouse.path"
        )
    with tempfile.TemporaryDirectory(prefix="vigie-replay-") as folder:
        copy = Path(folder) / "snapshot.duckdb"
        backup_warehouse(settings.warehouse_path, copy)
        with open_warehouse(copy) as con:
            return replay_configured(
                Store(con), settings, since=since, until=until, step=step, progress=progress
            )


def replay_markdown(
    alerts: Sequence[ReplayedAlert], *, since: datetime, until: datetime, step: timedelta
) -> str:
    lines = [
        f"# Replay from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC",
        "",
        f"Detection assessed every {step.total_seconds() / 60:g} min with the current settings; "
        f"{len(alerts)} alert(s) would have opened. Nothing was written.",
    ]
    if alerts:
        lines += [
            "",
            "| opened (UTC) | topic | level | severity | highest | resolved (UTC) |",
            "|---|---|---|---|---|---|",
        ]
        for alert in alerts[:MAX_ROWS]:
            resolved = f"{alert.resolved_at:%Y-%m-%d %H:%M}" if alert.resolved_at else "still open"
            topic = md_text(alert.topic)
            if alert.story_title:
                topic += f" (breaking story: {md_text(alert.story_title)})"
            lines.append(
                f"| {alert.opened_at:%Y-%m-%d %H:%M} | {topic} | {alert.level} "
                f"| {alert.severity:g} | {alert.highest_level} | {resolved} |"
            )
        if len(alerts) > MAX_ROWS:
            lines.append(f"\n… and {len(alerts) - MAX_ROWS} more.")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class BackupResult:
    """The maintenance's backup: the file written, those deleted beyond the number kept."""

    path: Path
    size: int
    removed: tuple[Path, ...]

    def describe(self) -> str:
        gone = f", {len(self.removed)} older deleted" if self.removed else ""
        return f"checked backup written to {self.path} ({self.size / 1e6:.1f} MB){gone}"


def maintenance_markdown(
    retention: RetentionResult,
    exports: Sequence[DayExport],
    checkpoint: tuple[int, int],
    backup: BackupResult | None = None,
) -> str:
    before, after = checkpoint
    lines = ["# Maintenance", "", "| step | what it did |", "|---|---|"]
    if backup is not None:
        lines.append(f"| backup | {md_text(backup.describe())} |")
    lines.append(f"| retention | {md_text(retention.describe())} |")
    if exports:
        for export in exports:
            lines.append(
                f"| export {export.day:%Y-%m-%d} | {export.mentions} mentions written to "
                f"{md_text(export.path)} |"
            )
    else:
        lines.append("| export | none (export_days is 0) |")
    lines.append(
        f"| checkpoint | write-ahead log folded into the file: {before / 1e6:.1f} MB before, "
        f"{after / 1e6:.1f} MB after (file and log together) |"
    )
    return "\n".join(lines)


def digest_markdown(queued: QueuedDigest, report: DeliveryReport | None) -> str:
    digest, message = queued.digest, queued.message
    lines = [
        f"# Digest {digest.period}: {digest.start:%Y-%m-%d %H:%M} to "
        f"{digest.end:%Y-%m-%d %H:%M} UTC",
        "",
        f"Subject: {md_text(message.subject)}; to {len(message.recipients)} recipient(s); "
        + ("already in the outbox, not queued again." if queued.already_queued else "queued."),
        "",
        "| topic | mentions | period before |",
        "|---|---|---|",
    ]
    lines += [f"| {md_text(t.topic)} | {t.mentions} | {t.previous} |" for t in digest.topics]
    lines += [
        "",
        f"{len(digest.stories)} top stories, {len(digest.failed_sources)} failed sources, "
        f"{len(digest.alerts)} alerts.",
    ]
    if report is not None:
        lines.append(_delivery_line(report))
    return "\n".join(lines)


def _delivery_line(report: DeliveryReport) -> str:
    return f"Outbox: {len(report.sent)} sent, {len(report.failed)} failed, {len(report.held)} held."


def escalation_markdown(paged: Sequence[str], report: DeliveryReport) -> str:
    lines = ["# Escalation check", ""]
    lines += [f"- {md_text(line)}" for line in paged[:MAX_ROWS]] or [
        "No alert waits for escalation."
    ]
    return "\n".join([*lines, "", _delivery_line(report)])


def readiness_markdown(outcomes: Sequence[TeamOutcome]) -> str:
    lines = ["# Readiness reminders", "", "| team | outcome | detail |", "|---|---|---|"]
    lines += [
        f"| {md_text(o.team)} | {o.outcome.replace('_', ' ')} | {md_text(o.detail)} |"
        for o in outcomes
    ]
    if not outcomes:
        lines.append("| (no team configured) | | |")
    return "\n".join(lines)


def _publish(key: str, markdown: str, description: str) -> None:
    publish_markdown(key=key, markdown=markdown, description=description)


@task(name="queue-digest", cache_policy=NO_CACHE)
def queue_digest_task(
    settings: Settings, period: Period, end: datetime | None, now: datetime
) -> QueuedDigest:
    """Build the period's digest and queue it in the outbox (once)."""
    return queue_digest(settings.warehouse_path, settings, period=period, end=end, now=now)


@task(name="send-outbox", cache_policy=NO_CACHE)
def send_pending_task(settings: Settings, secrets: Secrets, now: datetime) -> DeliveryReport:
    """Send every email that may go now; the rest waits in the outbox with its reason."""
    return send_pending(settings.warehouse_path, settings, secrets, now=now)


@task(name="send-readiness", cache_policy=NO_CACHE)
def send_readiness_task(
    settings: Settings, secrets: Secrets, now: datetime, team: str | None, force: bool
) -> list[TeamOutcome]:
    """Queue the reminders of the teams that are due, then send the outbox."""
    return send_readiness(
        settings.warehouse_path, settings, secrets, now=now, team=team, force=force
    )


@task(name="escalate-and-send", cache_policy=NO_CACHE)
def escalate_and_send_task(
    settings: Settings, secrets: Secrets, now: datetime
) -> tuple[list[str], DeliveryReport]:
    """Pass unacknowledged alerts up the cell, then send the outbox."""
    return escalate_and_send(settings.warehouse_path, settings, secrets, now=now)


@task(name="prune-raw-text", cache_policy=NO_CACHE)
def prune_raw_text_task(settings: Settings, now: datetime) -> RetentionResult:
    """Erase raw text older than the retention policy; aggregates are kept."""
    return prune_raw_text(settings.warehouse_path, settings.retention.raw_text_days, now)


@task(name="export-days", cache_policy=NO_CACHE)
def export_days_task(
    settings: Settings, folder: Path, days: int, today: date, fmt: ExportFormat
) -> list[DayExport]:
    """Export the last days' mentions, one file per UTC day."""
    return export_days(settings.warehouse_path, folder, days=days, today=today, fmt=fmt)


@task(name="backup", cache_policy=NO_CACHE)
def backup_task(settings: Settings, keep: int, now: datetime) -> BackupResult:
    """Write a dated, checked backup beside the warehouse (backups/) and keep the newest."""
    path, removed = rotate_backups(settings.warehouse_path, keep=keep, now=now)
    return BackupResult(path, path.stat().st_size, tuple(removed))


@task(name="checkpoint", cache_policy=NO_CACHE)
def checkpoint_task(settings: Settings) -> tuple[int, int]:
    """Fold DuckDB's write-ahead log into the warehouse file."""
    return checkpoint_warehouse(settings.warehouse_path)


@task(name="replay", cache_policy=NO_CACHE)
def replay_task(
    settings: Settings, since: datetime, until: datetime, step: timedelta
) -> list[ReplayedAlert]:
    """Replay detection on a snapshot, showing its progress as a Prefect progress artifact."""
    artifact_id = publish_progress("replay-progress", "Share of the replay's steps assessed")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, int(total * PROGRESS_EVERY)) == 0:
            update_progress(artifact_id, 100.0 * done / total)

    return replay_on_snapshot(settings, since=since, until=until, step=step, progress=progress)


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_markdown_task(key: str, markdown: str, description: str) -> None:
    """Show what the run did as a markdown artifact in the Prefect UI."""
    _publish(key, markdown, description)
