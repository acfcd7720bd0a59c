"""prefect.yaml against a real `prefect server start`: `prefect deploy --all` with a worker, and
`vigie serve`; runs are started through the API as the UI's "Run" button does.

Slow (a server, a worker or serve, flow runs in subprocesses): two tests share one server.
The project (prefect.yaml and flows/) is copied to a temporary folder, so nothing is written into
the repository.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cli.watch_automation import automation_name
from cli.watchdog import watchdog_limit
from tests.conftest import ConfigWriter
from tests.e2e.prefect_server import BIN, PrefectServer
from tests.e2e.served import (
    copy_project,
    prefect_client,
    scenario_sources,
    start_serve,
    wait_final,
    wait_mail,
    wait_served,
)
from vigie import scenario
from vigie.deployments import DeploymentSpec, ScheduleSpec, read_deployments
from vigie.localservers import FeedServer, MailSink
from vigie.settings import load_settings
from warehouse.connection import open_warehouse

if TYPE_CHECKING:
    from prefect.client.schemas.responses import DeploymentResponse

pytestmark = pytest.mark.prefect

RUN_TIMEOUT_S = 240


def _schedule_key(schedule: Any) -> tuple[str, str]:
    """(cron or interval in seconds, time zone) of an API schedule or a prefect.yaml one."""
    if isinstance(schedule, ScheduleSpec):
        value = schedule.cron or f"{schedule.interval_s:g}"
        return value, schedule.timezone or "UTC"
    inner = schedule.schedule
    cron = getattr(inner, "cron", None)
    value = cron or f"{inner.interval.total_seconds():g}"
    return value, inner.timezone or "UTC"


def _assert_deployed(
    specs: list[DeploymentSpec], deployments: list[DeploymentResponse]
) -> dict[str, DeploymentResponse]:
    by_name = {d.name: d for d in deployments}
    for spec in specs:
        assert spec.name in by_name, f"{spec.name} is not deployed"
        deployed = by_name[spec.name]
        wanted = sorted(_schedule_key(s) for s in spec.schedules if s.active)
        assert sorted(_schedule_key(s) for s in deployed.schedules if s.active) == wanted
        assert deployed.description == spec.description
    return by_name


def test_deploy_all_and_a_worker_run_a_watch_cycle(
    prefect_server: PrefectServer,
    tmp_path: Path,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    project = copy_project(tmp_path)  # write_config writes tmp_path/vigie.toml, beside prefect.yaml
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    config = write_config(
        sources=scenario_sources(urls),
        smtp_port=mail_sink.port,
    )
    prefect = str(BIN / "prefect")
    pool = prefect_server.run(
        [prefect, "work-pool", "create", "vigie-pool", "--type", "process", "--overwrite"],
        cwd=project,
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = prefect_server.run([prefect, "--no-prompt", "deploy", "--all"], cwd=project)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr

    specs = read_deployments(project / "prefect.yaml")
    with prefect_client(prefect_server) as client:
        by_name = _assert_deployed(specs, client.read_deployments())
        assert {by_name[s.name].work_pool_name for s in specs} == {"vigie-pool"}
        worker = prefect_server.start(
            "worker", [prefect, "worker", "start", "--pool", "vigie-pool"], cwd=project
        )
        try:
            run = client.create_flow_run_from_deployment(by_name["watch-cycle"].id)
            final = wait_final(client, run.id, worker, RUN_TIMEOUT_S)
        finally:
            worker.stop()
    assert final.state is not None and final.state.is_completed(), worker.output()[-3000:]
    assert final.name.startswith("watch-cycle 20")
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        cycles = con.execute(
            "SELECT count(*) FROM cycles WHERE flow_run_id = ? AND finished_at IS NOT NULL",
            [str(run.id)],
        ).fetchall()
        mentions = con.execute("SELECT count(*) FROM mentions").fetchall()
    assert cycles == [(1,)]
    assert mentions == [(6,)]  # the calm day's six mentions, whichever cycle loaded them
    # The moved blog is reported to the operators once, by the outbox, whatever ran first.
    notices = wait_mail(mail_sink, "[SOURCE]")
    assert len(notices) == 1


def test_vigie_serve_serves_every_deployment_and_runs_a_digest_started_from_the_api(
    prefect_server: PrefectServer,
    tmp_path: Path,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    project = copy_project(tmp_path / "project")
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
        smtp_port=mail_sink.port,
    )
    serve = start_serve(prefect_server, "serve", config, project, tmp_path)
    specs = read_deployments(project / "prefect.yaml")
    deadline = time.monotonic() + 120
    while "Serving" not in serve.output() and time.monotonic() < deadline:
        assert serve.process.poll() is None, serve.output()
        time.sleep(0.5)
    listing = serve.output()
    assert f"Serving {len(specs)} deployments" in listing, listing
    if "Replacing what `prefect deploy` registered" in listing:  # after the worker's test
        assert "watch-cycle/watch-cycle (work pool vigie-pool)" in listing
    assert "  digest/digest: cron 30 7 * * 1-5 (America/Toronto)" in listing
    with prefect_client(prefect_server) as client:
        served = wait_served(client, config, [s.name for s in specs], serve)
        by_name = _assert_deployed(specs, list(served.values()))
        assert by_name["digest"].parameters == {"period": "daily", "config_path": str(config)}
        assert not any(d.paused for d in served.values())
        # At start, serve set up the dead man's switch automation, once.
        settings = load_settings(config)
        assert f"Watchdog automation {automation_name(settings)} created" in serve.output()
        [automation] = client.read_automations_by_name(automation_name(settings))
        assert automation.trigger.within == watchdog_limit(settings)  # type: ignore[union-attr]
        run = client.create_flow_run_from_deployment(by_name["digest"].id)
        final = wait_final(client, run.id, serve, RUN_TIMEOUT_S)
        assert final.state is not None and final.state.is_completed(), serve.output()[-3000:]
        assert final.name == f"digest daily {datetime.now(UTC):%Y-%m-%d}"
        [digest] = wait_mail(mail_sink, "[Vigie][RÉSUMÉ]")
        assert "Laiterie Boréale" in str(digest["Subject"])
        assert serve.stop() == 0
        assert "paused until the next `vigie serve`" in serve.output()
        # serve pauses what it served when it stops (STACK.md gotcha 8).
        assert client.read_deployment(by_name["digest"].id).paused


def test_incident_mode_started_from_the_api_on_vigie_serve_mails_the_cell_with_artifacts_and_events(
    prefect_server: PrefectServer,
    tmp_path: Path,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    """The crisis room path: the cell starts incident-mode with its parameters, as the UI's
    "Custom run" form sends them, on deployments served by `vigie serve`."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from tests.e2e.prefect_events import wait_for_events

    project = copy_project(tmp_path / "project")
    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(
        sources=scenario_sources(urls),
        smtp_port=mail_sink.port,
    )
    serve = start_serve(prefect_server, "serve-incident", config, project, tmp_path)
    parameters = {
        "name": "rappel",
        "extra_queries": ["listeria"],
        "cadence_minutes": 0.05,
        "duration_hours": 20 / 3600,
        "sitrep_every_minutes": 0.15,
        "extra_recipients": ["presse@agence.example"],
    }
    try:
        with prefect_client(prefect_server) as client:
            served = wait_served(client, config, ["incident-mode", "watch-cycle"], serve)
            incident, watch = served["incident-mode"], served["watch-cycle"]
            # The scheduled watch saw the calm before the storm (its first collection is history).
            calm = client.create_flow_run_from_deployment(watch.id)
            calm_final = wait_final(client, calm.id, serve, RUN_TIMEOUT_S)
            assert calm_final.state is not None and calm_final.state.is_completed()
            scenario.publish(feed_server, "burst", anchor)
            run = client.create_flow_run_from_deployment(incident.id, parameters=parameters)
            final = wait_final(client, run.id, serve, RUN_TIMEOUT_S)
            assert final.state is not None and final.state.is_completed(), serve.output()[-3000:]
            assert final.name == "incident rappel"
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            events = wait_for_events(
                anchor, lambda found: any(e.event == "vigie.alert.opened" for e in found)
            )
    finally:
        serve.stop()

    subjects = [str(m["Subject"]) for m in mail_sink.messages()]
    assert "[Vigie][INCIDENT] rappel — point de situation n° 1 (H+0)" in subjects, subjects
    assert "[Vigie][INCIDENT] rappel — rapport d’incident (terminé)" in subjects, subjects
    report = next(m for m in mail_sink.messages() if "rapport d’incident" in str(m["Subject"]))
    assert "presse@agence.example" in [a.addr_spec for a in report["To"].addresses]
    keys = {a.key for a in artifacts if a.key}
    assert any(k.endswith("-report") for k in keys), keys
    assert any("-sitrep-1" in k for k in keys), keys
    assert any(s.startswith("[Vigie][CRISE]") for s in subjects), subjects  # the storm's alert
    opened = [e for e in events if e.event == "vigie.alert.opened"]
    assert opened, [e.event for e in events]
    assert opened[0].resource["vigie.alert.topic"] in {"marque", "incident rappel 1"}
    assert opened[0].resource["vigie.drill"] == "false"


def test_runs_left_unfinished_when_vigie_serve_stops_are_closed_and_the_incident_ends(
    prefect_server: PrefectServer,
    tmp_path: Path,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    """Ctrl-C (or SIGTERM) twice on `vigie serve` ends the processes of its runs: the
    incident-mode run, its watch cycle (a subflow) and the paused acknowledge run are closed
    with a message, and the incident ends with its report, instead of staying Running (or
    Paused) for ever."""
    project = copy_project(tmp_path / "project")
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    # A source that answers after minutes holds the incident's first cycle (a subflow run)
    # in its fetch while serve stops.
    slow = {"name": "Lente", "url": feed_server.set("/slow.xml", "x", delay_s=300)}
    config = write_config(sources=[*scenario_sources(urls), slow], smtp_port=mail_sink.port)
    text = config.read_text(encoding="utf-8")
    text = text.replace("read_timeout_s = 2", "read_timeout_s = 240")
    config.write_text(text.replace("deadline_s = 10", "deadline_s = 280"), encoding="utf-8")
    serve = start_serve(prefect_server, "serve-stopped", config, project, tmp_path)
    long_incident = {"name": "greve", "cadence_minutes": 30, "duration_hours": 2}
    try:
        with prefect_client(prefect_server) as client:
            served = wait_served(client, config, ["incident-mode", "acknowledge-alert"], serve)
            incident = client.create_flow_run_from_deployment(
                served["incident-mode"].id, parameters=long_incident
            )
            ack = client.create_flow_run_from_deployment(
                served["acknowledge-alert"].id, parameters={"alert_id": "al-left"}
            )
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while time.monotonic() < deadline:
                states = [client.read_flow_run(r.id).state for r in (incident, ack)]
                states += [r.state for r in _runs_named(client, "incident greve H")]
                waiting = [s for s in states if s is not None and (s.is_running() or s.is_paused())]
                if len(waiting) == 3 and _incident_status(config, "greve") == "running":
                    break
                assert serve.process.poll() is None, serve.output()[-3000:]
                time.sleep(1)
            else:
                raise AssertionError(f"not under way: {states}\n{serve.output()[-3000:]}")
        # Ctrl-C twice, as an impatient person does: the second cuts Prefect's own shutdown
        # (cancelling the runs, running the incident's hook) short.
        os.kill(serve.process.pid, signal.SIGTERM)
        time.sleep(1.5)
        os.kill(serve.process.pid, signal.SIGTERM)
        serve.process.wait(timeout=180)
    finally:
        serve.stop(timeout_s=180)
    with prefect_client(prefect_server) as client:
        incident_run = client.read_flow_run(incident.id)
        ack_run = client.read_flow_run(ack.id)
        [cycle_run] = _runs_named(client, "incident greve H")
    output = serve.output()
    subjects = [str(m["Subject"]) for m in mail_sink.messages()]
    seen = (
        incident_run.state,
        ack_run.state,
        cycle_run.state,
        _incident_status(config, "greve"),
        subjects,
    )
    print(seen, output[-4000:])
    # Final, with a message saying why: Prefect's runner cancels what it can as it shuts
    # down, `vigie serve` closes what it left (Crashed, or Cancelled for a paused run).
    for run in (incident_run, ack_run, cycle_run):
        assert run.state is not None and run.state.is_final(), seen
        assert run.state.message, seen
    # The incident ends with its report instead of staying `running` in the warehouse.
    assert _incident_status(config, "greve") in ("stopped", "crashed"), seen
    assert any("greve — rapport d’incident" in s for s in subjects), seen


def _incident_status(config: Path, name: str) -> str | None:
    settings = load_settings(config)
    if not settings.warehouse_path.exists():
        return None
    with open_warehouse(settings.warehouse_path, lock_wait_s=30) as con:
        rows = con.execute("SELECT status FROM incidents WHERE name = ?", [name]).fetchall()
    return str(rows[0][0]) if rows else None


def _runs_named(client: Any, prefix: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=prefix))
    )
    return [r for r in runs if r.name.startswith(prefix)]
