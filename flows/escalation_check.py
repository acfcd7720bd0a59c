"""Escalation check: an alert nobody acknowledged within `escalation.delay_minutes` goes to the
next level of the cell, and the outbox is sent (held messages whose time has come go too).

Schedule: every 5 minutes (prefect.yaml, deployment `escalation-check`), so an escalation is at
most 5 minutes late; the watch cycle also escalates, this keeps the delay between cycles.
Parameters: `config_path`.
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set.
One run at a time (concurrency_limit 1 in prefect.yaml); each paging is recorded in the warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath
from flows.watch_cycle import load_config_task
from tasks.operations import (
    escalate_and_send_task,
    escalation_markdown,
    publish_markdown_task,
    run_clock,
)


def _run_name() -> str:
    return f"escalation-check {datetime.now(UTC):%Y-%m-%d %H:%M}"


@flow(name="escalation-check", flow_run_name=_run_name)
def escalation_check(config_path: ConfigPath = "vigie.toml") -> dict[str, Any]:
    """Escalate the alerts that waited too long, then send the outbox.

    Args:
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    now = run_clock(datetime.now(UTC), flow_run.scheduled_start_time)
    settings, secrets = load_config_task(config_path)
    paged, report = escalate_and_send_task(settings, secrets, now)
    publish_markdown_task(
        "escalation-check",
        escalation_markdown(paged, report),
        "Alerts passed up the cell by the last check",
    )
    return {"escalations": paged, "sent": report.sent, "failed": report.failed}
