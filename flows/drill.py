"""The drill: rehearse step 5 with a labelled synthetic crisis through the real pipeline.

Manual (prefect.yaml, deployment `drill`, no schedule). Parameters: `name` (one name per drill:
a rerun of the same name resumes or reports that drill and sends nothing twice),
`ack_wait_minutes` (how long to wait for someone of the cell to take charge), `config_path`.
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set; a free port on 127.0.0.1 for the
drill's own feed server.

The run starts a feed server on 127.0.0.1 serving the drill's feeds (tasks/notify/drill.py), runs a
calm cycle (history), injects the crisis and runs cycles with the watch-cycle tasks until the
drill alert opens and its email (marked [EXERCICE]/[DRILL]) goes to the cell, then waits for the
acknowledgement (`vigie ack ALERT --by NAME` or the acknowledge-alert run) and reports the time
to detect and to acknowledge: row of `drills`, email to the cell, markdown artifact. Nobody
taking charge in time is a result, not a failure. The drill's cycles leave out what only real
cycles do: escalating real alerts, retention, health and quality notices, the `cycles` log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is used)
from flows.watch_cycle import _q, cycle_steps, load_config_task
from tasks.notify.drill import (
    begin_drill_task,
    check_drill_topic,
    drill_id_for,
    drill_settings,
    drill_summary,
    find_drill_alert_task,
    finish_drill_task,
    inject_crisis_task,
    register_drill_sources_task,
    report_drill_task,
    serve_drill,
    wait_for_acknowledgement_task,
)
from tasks.publish.report import StepClock
from vigie.localservers import FeedServer
from vigie.settings import Secrets, Settings

# Cycles run after the injection before the drill says the crisis was not detected.
DETECTION_CYCLES = 2
ACK_POLL_SECONDS = 2.0

# Bounds for the UI form; Prefect 3.9 takes the descriptions from the docstring's Args (a
# description in these Fields is dropped from the parameter schema).
DrillName = Annotated[str, Field(min_length=1, max_length=80)]
AckWaitMinutes = Annotated[int, Field(ge=1, le=24 * 60)]


def drill_cycle(
    path: Path,
    settings: Settings,
    secrets: Secrets,
    *,
    cycle_id: str,
    config_path: str,
) -> list[str]:
    """One cycle over the drill's sources with the watch cycle's own steps; the alerts opened."""
    states = register_drill_sources_task(path, _q(settings.sources))
    steps = cycle_steps(
        settings,
        secrets,
        states,
        cycle_id=cycle_id,
        now=datetime.now(UTC),
        config_path=config_path,
        clock=StepClock(),
        drill=True,
    )
    return steps.changes.opened


@flow(name="drill", flow_run_name="drill {name}")
def drill(
    name: DrillName,
    ack_wait_minutes: AckWaitMinutes = 30,
    config_path: str = "vigie.toml",
) -> dict[str, Any]:
    """Inject a labelled synthetic crisis, wait for the cell to take charge, report the times.

    Args:
        name: The drill's name, one per drill (e.g. "exercice 2026-11"): running the same name
            again reports that drill and sends nothing twice.
        ack_wait_minutes: How long to wait for someone of the cell to take charge of the drill
            alert (vigie ack, or the acknowledge-alert run) before reporting that nobody did.
        config_path: The Vigie configuration file (TOML).
    """
    settings, secrets = load_config_task(config_path)
    drill_id = drill_id_for(name)
    check_drill_topic(settings, drill_id)
    path = settings.warehouse_path
    resolved_config = str(Path(config_path).resolve())
    record = begin_drill_task(
        path, drill_id, name, datetime.now(UTC), ack_wait_minutes, flow_run.id
    )
    if not record.finished:
        language = settings.organisation.language
        organisation = settings.organisation.name
        with FeedServer() as server:
            urls = serve_drill(
                server,
                drill_id=drill_id,
                organisation=organisation,
                language=language,
                started_at=record.started_at,
                injected_at=None,
            )
            cycle_settings = drill_settings(settings, drill_id=drill_id, urls=urls)
            # The sources' first cycle is their history (backfill), never news.
            drill_cycle(
                path,
                cycle_settings,
                secrets,
                cycle_id=f"{drill_id}.calm",
                config_path=resolved_config,
            )
            inject_crisis_task(path, server, record, organisation, language)
            alert_id = find_drill_alert_task(path, drill_id, datetime.now(UTC))
            for attempt in range(DETECTION_CYCLES):
                if alert_id is not None:
                    break
                drill_cycle(
                    path,
                    cycle_settings,
                    secrets,
                    cycle_id=f"{drill_id}.{datetime.now(UTC):%Y%m%dT%H%M%S}.{attempt}",
                    config_path=resolved_config,
                )
                alert_id = find_drill_alert_task(path, drill_id, datetime.now(UTC))
        outcome = wait_for_acknowledgement_task(path, alert_id, ack_wait_minutes, ACK_POLL_SECONDS)
        record = finish_drill_task(path, drill_id, outcome)
    report_drill_task(path, _q(settings), secrets, drill_id)
    return drill_summary(record)
