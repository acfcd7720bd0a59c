"""Replay: rerun detection over stored history with the current settings, to tune it without
waiting for the next crisis; a progress artifact follows it, a markdown artifact lists the alerts
that would have opened. Nothing is written to the warehouse.

Schedule: none (manual; prefect.yaml, deployment `replay`).
Parameters: `since`, `until` (UTC unless they say otherwise), `step_minutes` (default the
detection window), `config_path`.
It works on a snapshot of the warehouse, so the watch cycles keep running meanwhile
(`vigie replay` does the same replay on the warehouse itself).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath
from flows.watch_cycle import load_config_task
from tasks.operations import publish_markdown_task, replay_markdown, replay_task

MAX_STEPS = 100_000


def _run_name() -> str:
    since, until = flow_run.parameters.get("since"), flow_run.parameters.get("until")
    return f"replay {str(since)[:16]} to {str(until)[:16]}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@flow(name="replay", flow_run_name=_run_name)
def replay_detection(
    since: datetime,
    until: datetime,
    step_minutes: Annotated[int | None, Field(ge=5, le=1440)] = None,
    config_path: ConfigPath = "vigie.toml",
) -> list[dict[str, Any]]:
    """List the alerts detection would have opened between `since` and `until`.

    Args:
        since: Start of the replay (UTC unless it says otherwise).
        until: End of the replay (UTC unless it says otherwise).
        step_minutes: Minutes between assessments (5 to 1440); empty: the detection window.
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
    """
    since, until = _utc(since), _utc(until)
    settings, _ = load_config_task(config_path)
    step = timedelta(minutes=step_minutes or settings.detection.window_minutes)
    if until <= since or (until - since) / step > MAX_STEPS:
        raise ValueError(
            f"until must come after since, and the replay have at most {MAX_STEPS} steps"
        )
    alerts = replay_task(settings, since, until, step)
    publish_markdown_task(
        "replay",
        replay_markdown(alerts, since=since, until=until, step=step),
        "Alerts the last replay would have opened",
    )
    return [
        {
            "topic": a.topic,
            "opened_at": a.opened_at.isoformat(),
            "level": a.level,
            "highest_level": a.highest_level,
            "severity": a.severity,
            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        }
        for a in alerts
    ]
