"""Acknowledge an alert from the Prefect UI: the run waits, paused, for a name in a form.

The alert email links to this run. Whoever takes charge opens it, clicks "Resume", types their
name; the acknowledgement is recorded in `alert_events` like `vigie ack`, and escalation stops.
The Prefect event `vigie.alert.acknowledged` tells automations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from prefect import flow
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.params import ConfigPath, label
from tasks.publish.events import acknowledged_event, emit_vigie_events
from tasks.publish.situation import publish_situation, read_situation
from vigie.settings import Settings, load_settings
from warehouse.connection import open_warehouse
from warehouse.store import Store


class Acknowledgement(RunInput):
    """Who takes charge of the alert."""

    name: str = Field(
        min_length=1,
        max_length=120,
        description="Your name: you take charge of this alert (escalation stops).",
    )


def record_acknowledgement(settings: Settings, alert_id: str, name: str, now: datetime) -> str:
    """Record the acknowledgement; say what it changed (an alert already taken stays so)."""
    by = " ".join(name.split())[:120]
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        store = Store(con)
        before = store.acknowledge_alert(alert_id, by, now)
        event = acknowledged_event(store, alert_id, by, ui_url=flow_run.ui_url)
    if before == "open":
        emit_vigie_events([event] if event else [])
        return f"{alert_id} acknowledged by {by}"
    return f"{alert_id} was already {before}; nothing changed"


@flow(name="acknowledge-alert", flow_run_name="acknowledge {alert_id}")
def acknowledge_alert(
    alert_id: Annotated[
        str, Field(min_length=1, max_length=200, json_schema_extra=label("Alert to take charge of"))
    ],
    config_path: ConfigPath = "vigie.toml",
    wait_hours: Annotated[
        float, Field(gt=0, le=168, json_schema_extra=label("Hours to wait for a name"))
    ] = 24,
) -> str:
    """Wait (paused) for someone of the cell to take charge of `alert_id`, then record it.

    Args:
        alert_id: The alert to take charge of (al-...), as its email gives it.
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
        wait_hours: How long the run waits for a name, in hours (at most a week).
    """
    answer = pause_flow_run(
        wait_for_input=Acknowledgement, timeout=int(wait_hours * 3600), poll_interval=2
    )
    # Read once the name has come: the configuration may have changed during the wait.
    settings = load_settings(config_path)
    outcome = record_acknowledgement(settings, alert_id, answer.name, datetime.now(UTC))
    # The cell reads who took charge in the `situation` artifact: now, not at the next cycle.
    republish_situation(settings, datetime.now(UTC))
    return outcome


def republish_situation(settings: Settings, now: datetime) -> bool:
    """Replace the `situation` artifact with the warehouse's situation now (from the flow's
    body: the artifact belongs to this run)."""
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        situation = read_situation(Store(con))
    return publish_situation(
        situation,
        now=now,
        language=settings.organisation.language,
        timezone=settings.organisation.timezone,
    )
