"""Readiness reminders (step 4): each internal team is told that the crisis cell exists, who is
in it and what to do, once per occurrence of its cron.

Schedule: `schedule.readiness_cron` and every team's own `cron`, in the organisation's time zone
(prefect.yaml, deployment `readiness`). A run sends only the reminders that are due, so running
it more often than a team's cron sends nothing twice.
Parameters: `team` (only this team), `force` (remind even if this period's reminder went out),
`config_path`.
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath
from flows.watch_cycle import load_config_task
from tasks.operations import (
    publish_markdown_task,
    readiness_markdown,
    run_clock,
    send_readiness_task,
)


def _run_name() -> str:
    return f"readiness {datetime.now(UTC):%Y-%m-%d}"


@flow(name="readiness", flow_run_name=_run_name)
def send_readiness_reminders(
    team: Annotated[str | None, Field(max_length=200)] = None,
    force: bool = False,
    config_path: ConfigPath = "vigie.toml",
) -> list[dict[str, Any]]:
    """Queue the reminders of the teams that are due, send the outbox, report each team.

    Args:
        team: Only this team (its name in the configuration); empty: every team that is due.
        force: Remind now even if this period's reminder already went out.
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    now = run_clock(datetime.now(UTC), flow_run.scheduled_start_time)
    settings, secrets = load_config_task(config_path)
    outcomes = send_readiness_task(settings, secrets, now, team or None, force)
    publish_markdown_task(
        "readiness", readiness_markdown(outcomes), "Which teams were reminded, and how"
    )
    return [asdict(o) for o in outcomes]
