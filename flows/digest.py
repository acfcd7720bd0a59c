"""The cell's digest: what happened in the period against the one before, emailed to the cell.

Schedule: `schedule.digest_cron` in the organisation's time zone (prefect.yaml, deployment
`digest`); a weekly digest is a manual run with `period` = weekly.
Parameters: `period` (daily | weekly), `config_path`.
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set.
The message id names the period and its end, so a rerun within the hour queues nothing new; the
email goes through the outbox like every other (`vigie digest` does the same).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath
from flows.watch_cycle import load_config_task
from tasks.notify.digest import Period, digest_summary
from tasks.operations import (
    digest_markdown,
    publish_markdown_task,
    queue_digest_task,
    run_clock,
    send_pending_task,
)


def _run_name() -> str:
    period = flow_run.parameters.get("period", "daily")
    return f"digest {period} {datetime.now(UTC):%Y-%m-%d}"


@flow(name="digest", flow_run_name=_run_name)
def send_digest(
    period: Period = "daily",
    config_path: ConfigPath = "vigie.toml",
) -> dict[str, Any]:
    """Build the period's digest, queue it once in the outbox and send the outbox.

    Args:
        period: daily (the last 24 hours against the 24 before) or weekly (7 days against 7).
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    now = run_clock(datetime.now(UTC), flow_run.scheduled_start_time)
    settings, secrets = load_config_task(config_path)
    queued = queue_digest_task(settings, period, None, now)
    report = send_pending_task(settings, secrets, now)
    publish_markdown_task(
        "digest", digest_markdown(queued, report), "The cell's last digest and its delivery"
    )
    return {
        **digest_summary(queued.digest),
        "message_id": queued.message.message_id,
        "already_queued": queued.already_queued,
        "sent": report.sent,
        "failed": report.failed,
    }
