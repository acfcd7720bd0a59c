"""Incident mode, started by hand from the Prefect UI (or by the crisis-level trigger of
prefect.yaml): tight-cadence watch cycles with extra queries, situation reports, a final report.

Deployment: `incident-mode` (manual, no schedule). Parameters: see `incident_mode` (the UI shows
them as a form with their bounds). Each cycle is a `watch-cycle` subflow named
"incident <name> H+<elapsed>"; a situation report goes to the cell and the extra recipients
every `sitrep_every_minutes`; at the end (duration passed, `vigie incident stop NAME`, or the
run cancelled from the UI) the incident report is stored in `incidents`, emailed and published.
A second run for an incident already running does nothing (two triggers, one crisis).
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from prefect import flow, runtime
from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow
from pydantic import EmailStr, Field

import vigie  # noqa: F401  (turns telemetry off before Prefect is imported)
from flows.params import ConfigPath, label
from flows.watch_cycle import load_config_task, watch_cycle
from tasks.notify.incident import (
    MAX_NAME,
    MAX_QUERIES,
    MAX_RECIPIENTS,
    NAME_PATTERN,
    IncidentPlan,
    begin_incident_task,
    check_recipients,
    extra_watches,
    finish_incident,
    finish_incident_task,
    incident_parameters,
    incident_recipients,
    send_sitrep_task,
    stop_requested,
    wait_until,
)
from vigie.settings import load_secrets, load_settings
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore

# Bounds and labels here, descriptions in the flow's docstring (Prefect builds the UI form from
# both). Lists default to empty, not None: the form then shows the list, not a "list | None"
# switch.
IncidentName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME,
        pattern=NAME_PATTERN,
        json_schema_extra=label("Incident name"),
    ),
]
ExtraQueries = Annotated[
    Sequence[Annotated[str, Field(min_length=1, max_length=2000)]],
    Field(max_length=MAX_QUERIES, json_schema_extra=label("Extra queries to watch")),
]
# Small lower bounds let tests run incident mode in seconds; the defaults suit a real crisis.
CadenceMinutes = Annotated[
    float, Field(ge=0.02, le=60, json_schema_extra=label("Minutes between two watch cycles"))
]
DurationHours = Annotated[
    float, Field(gt=0, le=168, json_schema_extra=label("How long it lasts, in hours"))
]
SitrepMinutes = Annotated[
    float,
    Field(ge=0.02, le=1440, json_schema_extra=label("Minutes between two situation reports")),
]
ExtraRecipients = Annotated[
    Sequence[EmailStr],
    Field(max_length=MAX_RECIPIENTS, json_schema_extra=label("Who else gets the reports")),
]


def close_incident_of_run(flow: Flow[..., Any], flow_run: FlowRun, state: State) -> None:
    """on_cancellation / on_crashed / on_failure: a run that ends early still ends its incident
    with its report stored and sent (status `stopped` when cancelled, `crashed` otherwise).
    On cancellation Prefect runs it where the run was started (the worker or `serve`), after
    the flow's process is gone."""
    config_path = str(flow_run.parameters.get("config_path") or "vigie.toml")
    settings = load_settings(config_path)
    if not settings.warehouse_path.exists():
        return  # the run failed before starting anything (a malformed query, say)
    with open_warehouse(settings.warehouse_path) as con:
        incident = IncidentStore(con).incident_of_run(str(flow_run.id))
    if incident is None or incident.status != "running":
        return
    extra = [str(a) for a in incident.parameters.get("extra_recipients") or []]
    finish_incident(
        settings,
        load_secrets(settings),
        incident,
        status="stopped" if state.is_cancelling() or state.is_cancelled() else "crashed",
        ended_at=datetime.now(UTC),
        recipients=incident_recipients(settings, extra),
    )


@flow(
    name="incident-mode",
    flow_run_name="incident {name}",
    on_cancellation=[close_incident_of_run],
    on_crashed=[close_incident_of_run],
    on_failure=[close_incident_of_run],
)
def incident_mode(
    name: IncidentName,
    extra_queries: ExtraQueries = (),
    cadence_minutes: CadenceMinutes = 5.0,
    duration_hours: DurationHours = 24.0,
    sitrep_every_minutes: SitrepMinutes = 60.0,
    extra_recipients: ExtraRecipients = (),
    config_path: ConfigPath = "vigie.toml",
) -> dict[str, Any]:
    """Run incident mode until its duration passes or someone stops it; return its outcome.

    Args:
        name: A short name for the incident, for example its topic; it names the runs and
            the reports (letters, digits, spaces, . ' -).
        extra_queries: Words to watch during the incident only, beside the configured
            watches, one query per item in Vigie's query syntax (a "quoted phrase", word*,
            OR, NOT, NEAR/5); at most 10. Leave empty to watch the usual topics.
        cadence_minutes: How often the incident's watch cycles run.
        duration_hours: When incident mode ends by itself; stop it earlier with
            `vigie incident stop NAME` or by cancelling the run.
        sitrep_every_minutes: How often a situation report (H+1, H+2, ...) goes to the cell.
        extra_recipients: Email addresses that get the reports besides the crisis cell.
        config_path: The Vigie configuration file (vigie.toml), as the deployment reads it.
    """
    queries = list(extra_queries or [])
    watches = extra_watches(name, queries)  # a malformed query fails the run here, at once
    addresses = check_recipients([str(a) for a in extra_recipients or []])
    settings, secrets = load_config_task(config_path)
    path = settings.warehouse_path
    plan = IncidentPlan.of(
        datetime.now(UTC),
        cadence_minutes=cadence_minutes,
        duration_hours=duration_hours,
        sitrep_every_minutes=sitrep_every_minutes,
    )
    parameters = incident_parameters(
        name=name,
        extra_queries=queries,
        cadence_minutes=cadence_minutes,
        duration_hours=duration_hours,
        sitrep_every_minutes=sitrep_every_minutes,
        extra_recipients=addresses,
        config_path=config_path,
    )
    incident, duplicate = begin_incident_task(path, name, parameters, plan, runtime.flow_run.id)
    if duplicate:
        return {"incident_id": incident.incident_id, "status": "duplicate", "cycles": 0}
    if incident.started_at != plan.started_at:  # a rerun of this run: keep the first plan
        plan = IncidentPlan.of(
            incident.started_at,
            cadence_minutes=cadence_minutes,
            duration_hours=duration_hours,
            sitrep_every_minutes=sitrep_every_minutes,
        )
    recipients = incident_recipients(settings, addresses)
    extra_topics = [w.name for w in watches]
    # Reports are numbered 1, 2, 3... as sent; `covered` is the last period a report covered
    # (a cycle slower than the report interval makes one report cover several periods).
    sent, cycles, stopped = incident.sitreps, 0, False
    covered = sent
    while not stopped and (cycle_started := datetime.now(UTC)) < plan.ends_at:
        cycle_run = watch_cycle.with_options(
            flow_run_name=f"incident {name} {plan.label(cycle_started)}"
        )
        # A failed cycle (a source server down, the warehouse busy too long) is in the UI;
        # incident mode goes on with the next one.
        cycle_run(config_path=config_path, extra_watches=list(watches), return_state=True)
        cycles += 1
        due = plan.sitrep_due(datetime.now(UTC))
        if due > covered:
            send_sitrep_task.with_options(
                task_run_name=f"incident {name} {plan.sitrep_label(due)} report"
            )(
                path,
                settings,
                secrets,
                incident,
                sent + 1,
                plan.sitrep_at(covered),
                plan.sitrep_at(due),
                extra_topics,
                recipients,
            )
            sent, covered = sent + 1, due
        next_at = min(plan.next_cycle(cycle_started, datetime.now(UTC)), plan.ends_at)
        stopped = wait_until(next_at, lambda: stop_requested(path, incident.incident_id))
    status = "stopped" if stopped else "ended"
    report = finish_incident_task(settings, secrets, incident, status, recipients)
    return {
        "incident_id": incident.incident_id,
        "status": status,
        "cycles": cycles,
        "sitreps": sent,
        "report": report,
    }
