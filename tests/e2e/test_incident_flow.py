"""Incident mode as a Prefect flow on a real (temporary) Prefect server, against the bundled
scenario served over HTTP on 127.0.0.1 and a real SMTP server: short cycles, situation reports,
the final report, a stop request from another process while a scheduled cycle runs beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.notify.incident import (
    IncidentPlan,
    begin_incident,
    finish_incident,
    queue_sitrep,
    report_message_id,
    sitrep_message_id,
)
from tests.commands import vigie_here
from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.errors import QueryError
from vigie.localservers import FeedServer, MailSink
from vigie.settings import load_secrets, load_settings
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore

pytestmark = pytest.mark.prefect

PRESS = "presse@agence-conseil.example"


def _sources(urls: dict[str, str]) -> list[dict[str, object]]:
    return [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]


def _rows(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with open_warehouse(path) as con:
        return con.execute(sql, params or []).fetchall()


def _subjects(sink: MailSink) -> list[str]:
    return [str(m["Subject"]) for m in sink.messages()]


def test_incident_mode_reports_and_a_rerun_sends_nothing(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.incident import incident_mode
    from flows.watch_cycle import watch_cycle

    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(sources=_sources(urls), smtp_port=mail_sink.port)
    warehouse = config.parent / "wh" / "vigie.duckdb"
    watch_cycle(str(config))  # the scheduled cycle saw the calm before the storm
    scenario.publish(feed_server, "burst", anchor)
    before = len(mail_sink.messages())

    started = time.monotonic()
    outcome = incident_mode(
        name="rappel",
        extra_queries=["listeria", "rappel* NEAR/3 fromages"],
        cadence_minutes=0.02,
        duration_hours=25 / 3600,
        sitrep_every_minutes=0.1,
        extra_recipients=[PRESS],
        config_path=str(config),
    )
    elapsed = time.monotonic() - started
    assert outcome["status"] == "ended"
    assert outcome["cycles"] >= 2 and outcome["sitreps"] >= 1
    cycles, reports = outcome["cycles"], outcome["sitreps"]
    print(f"incident of 25 s: {cycles} cycles, {reports} reports, {elapsed:.0f} s")

    incident_id = outcome["incident_id"]
    [row] = _rows(
        warehouse,
        "SELECT name, status, sitreps, report, ended_at >= started_at, "
        "parameters->>'cadence_minutes' FROM incidents",
    )
    assert row[:3] == ("rappel", "ended", outcome["sitreps"])
    assert row[3] == outcome["report"] and row[4] is True and row[5] == "0.02"

    # The extra queries are topics of their own, with mentions.
    [(listeria,)] = _rows(
        warehouse, "SELECT count(*) FROM mentions WHERE list_contains(topics, 'incident rappel 1')"
    )
    assert listeria >= 3  # syndicated copies of one headline are one mention (title dedup)

    emails = mail_sink.messages()[before:]
    subjects = [str(m["Subject"]) for m in emails]
    assert "[Vigie][INCIDENT] rappel — point de situation n° 1 (H+0)" in subjects
    # Numbered as sent, without gaps, even when a cycle outlasts the 6 s report interval.
    numbers = [int(s.split(" n° ")[1].split()[0]) for s in subjects if "point de situation n°" in s]
    assert numbers == list(range(1, outcome["sitreps"] + 1))
    assert subjects[-1] == "[Vigie][INCIDENT] rappel — rapport d’incident (terminé)"
    assert any(s.startswith("[Vigie][CRISE]") for s in subjects)  # the storm's alert
    report = emails[-1]
    to = [a.addr_spec for a in report["To"].addresses]
    assert to[-1] == PRESS and "awa.diallo@laiterie-boreale.example" in to
    body = report.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "incident rappel 1" in body and "Chronologie des alertes" in body
    assert "[CRISE] marque — ouverte" in body
    assert "<script>" not in body and "javascript:" not in body
    first = next(m for m in emails if "n° 1" in str(m["Subject"]))
    sitrep = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "incident rappel 1 (requête de l’incident)" in sitrep
    assert "Rappel de fromages de la Laiterie Boréale : risque de listeria" in sitrep

    from prefect import get_client
    from prefect.artifacts import Artifact
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        named = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="incident rappel"))
        )
    # The session's server also holds other tests' runs of that name: this test's only.
    names = sorted(run.name for run in named if run.created and run.created >= anchor)
    assert names[0] == "incident rappel"
    assert "incident rappel H+0" in names and len(names) == 1 + outcome["cycles"]

    artifact = Artifact.get(f"{incident_id}-report".lower())
    assert artifact is not None and "Rapport d" in str(artifact.data)
    assert Artifact.get(f"{incident_id}-sitrep-1".lower()) is not None

    # A rerun of a report or of the end sends nothing more.
    settings = load_settings(config)
    sent = len(mail_sink.messages())
    with open_warehouse(warehouse) as con:
        store = IncidentStore(con)
        incident = store.incident(incident_id)
        assert incident is not None
        queued, _ = queue_sitrep(
            store,
            settings,
            incident,
            number=1,
            start=incident.started_at,
            end=incident.started_at + timedelta(minutes=0.1),
            extra_topics=[],
            recipients=["awa.diallo@laiterie-boreale.example"],
            now=datetime.now(UTC),
        )
        assert not queued
    finish_incident(
        settings,
        load_secrets(settings),
        incident,
        status="stopped",
        ended_at=datetime.now(UTC),
        recipients=[PRESS],
    )
    assert len(mail_sink.messages()) == sent
    assert _rows(warehouse, "SELECT status FROM incidents") == [("ended",)]
    ids = {r[0] for r in _rows(warehouse, "SELECT message_id FROM outbox WHERE kind = 'incident'")}
    assert sitrep_message_id(incident_id, 1) in ids and report_message_id(incident_id) in ids


def test_a_second_run_for_a_running_incident_does_nothing(
    prefect_harness: str, mail_sink: MailSink, write_config: ConfigWriter, feed_server: FeedServer
) -> None:
    from flows.incident import incident_mode

    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    config = write_config(sources=_sources(urls), smtp_port=mail_sink.port)
    settings = load_settings(config)
    plan = IncidentPlan.of(
        datetime.now(UTC), cadence_minutes=5, duration_hours=1, sitrep_every_minutes=60
    )
    with open_warehouse(settings.warehouse_path) as con:
        first, _ = begin_incident(IncidentStore(con), "doublon", {}, plan, "another-run")
    outcome = incident_mode(name="doublon", config_path=str(config))
    assert outcome == {"incident_id": first.incident_id, "status": "duplicate", "cycles": 0}
    assert mail_sink.messages() == []
    assert _rows(settings.warehouse_path, "SELECT count(*) FROM cycles") == [(0,)]


def test_a_malformed_extra_query_fails_the_run_at_once(
    prefect_harness: str, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    from flows.incident import incident_mode

    config = write_config(sources=[{"name": "x", "url": "http://127.0.0.1:9/x"}], smtp_port=1)
    started = time.monotonic()
    state = incident_mode(
        name="rappel",
        extra_queries=["listeria", "rappel NEAR/3 (lait"],
        config_path=str(config),
        return_state=True,
    )
    assert state.is_failed()
    assert state.message is not None and "extra query 2" in state.message
    with pytest.raises(QueryError, match=r"extra query 2 .*position \d+"):
        state.result()
    assert time.monotonic() - started < 30
    assert not (config.parent / "wh" / "vigie.duckdb").exists()


def _stop_incident(config: Path, api_url: str, by: str) -> subprocess.CompletedProcess[str]:
    command = ["-m", "cli.main", "--config", str(config), "incident", "stop", "boycott"]
    return subprocess.run(
        [sys.executable, *command, "--by", by],
        env=_prefect_env(api_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _prefect_env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=api_url,
        # The test server is SQLite on a busy 2-core machine: ride out longer 503 bursts.
        PREFECT_CLIENT_MAX_RETRIES="8",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="false",
    )
    return env


SCHEDULED_CYCLES = """
import sys
from flows.watch_cycle import watch_cycle
for _ in range(2):
    summary = watch_cycle(sys.argv[1])
    print("cycle", summary["cycle_id"], flush=True)
"""


def test_incident_runs_beside_the_scheduled_cycle_and_stops_on_request(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.incident import incident_mode

    urls = scenario.publish(feed_server, "burst", datetime.now(UTC))
    config = write_config(sources=_sources(urls), smtp_port=mail_sink.port)
    warehouse = config.parent / "wh" / "vigie.duckdb"
    results: dict[str, Any] = {}

    def run_incident() -> None:
        results["outcome"] = incident_mode(
            name="boycott",
            extra_queries=["boycott*"],
            cadence_minutes=0.02,
            duration_hours=1,
            sitrep_every_minutes=0.05,
            config_path=str(config),
        )

    incident = threading.Thread(target=run_incident, daemon=True)
    incident.start()
    try:
        # The scheduled watch cycle, in its own process, on the same warehouse at the same time.
        scheduled = subprocess.Popen(
            [sys.executable, "-c", SCHEDULED_CYCLES, str(config)],
            env=_prefect_env(prefect_harness),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any(
            "point de situation n° 1" in s for s in _subjects(mail_sink)
        ):
            assert incident.is_alive(), results
            time.sleep(0.5)
        out, err = scheduled.communicate(timeout=180)
        assert scheduled.returncode == 0, err[-2000:]
        assert out.count("cycle ") == 2

        stop = _stop_incident(config, prefect_harness, "Awa Diallo")
        assert stop.returncode == 0, stop.stderr
        assert "s’arrêtera après son cycle en cours" in stop.stdout  # in French
        asked = time.monotonic()
        incident.join(timeout=120)
        assert not incident.is_alive()
    finally:
        if incident.is_alive():  # a failure above must not leave cycles running for later tests
            _stop_incident(config, prefect_harness, "cleanup")
            incident.join(timeout=120)
    print(f"stopped {time.monotonic() - asked:.1f} s after the request")
    outcome = results["outcome"]
    assert outcome["status"] == "stopped" and outcome["cycles"] >= 1

    [(status, by, report)] = _rows(
        warehouse, "SELECT status, stop_requested_by, report FROM incidents"
    )
    assert status == "stopped" and by == "Awa Diallo" and "Awa Diallo" in report
    final = mail_sink.messages()[-1]
    assert final["Subject"] == "[Vigie][INCIDENT] boycott — rapport d’incident (arrêté)"
    text = final.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Arrêté à la demande de Awa Diallo." in text
    # Both processes' cycles are in the warehouse: 2 scheduled, the incident's own.
    [(cycles,)] = _rows(warehouse, "SELECT count(*) FROM cycles WHERE finished_at IS NOT NULL")
    assert cycles >= 2 + outcome["cycles"]
    listed = vigie_here(
        "--config", str(config), "incident", "list", env=_prefect_env(prefect_harness)
    )
    assert "« boycott » arrêté, arrêt demandé par Awa Diallo" in listed.stdout  # in French


def _prefect(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_crisis_alert_event_starts_incident_mode_and_cancelling_it_still_reports(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    """prefect.yaml's trigger, deployed as is: a crisis-level alert event (not a drill) starts
    incident-mode named after the topic; cancelling that run (as the UI's Cancel button does)
    ends the incident as stopped, with its report stored and sent, by the on_cancellation hook
    that the worker runs."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.events import emit_event
    from prefect.states import Cancelling

    root = Path(__file__).resolve().parents[2]
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    config = write_config(sources=_sources(urls), smtp_port=mail_sink.port)
    assert config.parent == tmp_path
    # The project as deployed: prefect.yaml (its config_path pointing at the test's vigie.toml)
    # and the entrypoint.
    project = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert project.count("config_path: vigie.toml") >= 2
    (tmp_path / "prefect.yaml").write_text(
        project.replace("config_path: vigie.toml", f"config_path: {config}"), encoding="utf-8"
    )
    (tmp_path / "flows").symlink_to(root / "flows")
    env = _prefect_env(prefect_harness)
    _prefect(
        ["work-pool", "create", "vigie-pool", "--type", "process", "--overwrite"], tmp_path, env
    )
    _prefect(["--no-prompt", "deploy", "--name", "incident-mode"], tmp_path, env)
    only_deployment = DeploymentFilter(name=DeploymentFilterName(any_=["incident-mode"]))
    with get_client(sync_client=True) as client:
        # The session's server may hold runs of an earlier test's incident-mode deployment
        # (same name): gone, so that this worker runs and this test counts only its own.
        for left in client.read_flow_runs(deployment_filter=only_deployment):
            client.delete_flow_run(left.id)
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            "worker",
            "start",
            "--pool",
            "vigie-pool",
            "--name",
            "incident-test-worker",
        ],
        cwd=tmp_path,
        env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        resource = {
            "prefect.resource.id": "vigie.alert.al-1",
            "prefect.resource.name": "marque",
            "vigie.alert.level": "crise",
            "vigie.alert.topic": "marque",
        }
        # Neither a drill nor a lower level starts anything.
        emit_event("vigie.alert.opened", resource={**resource, "vigie.drill": "true"})
        emit_event(
            "vigie.alert.opened",
            resource={**resource, "vigie.alert.level": "alerte", "vigie.drill": "false"},
        )
        emitted = time.monotonic()
        emit_event("vigie.alert.escalated", resource={**resource, "vigie.drill": "false"})
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 120
            runs = []
            while not runs and time.monotonic() < deadline:
                runs = client.read_flow_runs(deployment_filter=only_deployment)
                time.sleep(0.5)
            print(f"run created {time.monotonic() - emitted:.1f} s after the event")
            time.sleep(5)  # time for a wrong trigger to fire too
            runs = client.read_flow_runs(deployment_filter=only_deployment)
            [run] = runs
            assert run.parameters["name"] == "marque"
            # Wait for the incident to be running (its first cycle started), then cancel it.
            deadline = time.monotonic() + 180
            started: list[tuple[Any, ...]] = []
            while not started and time.monotonic() < deadline:
                current = client.read_flow_run(run.id).state
                assert current is None or not current.is_final(), current
                if (tmp_path / "wh" / "vigie.duckdb").exists():
                    started = _rows(
                        tmp_path / "wh" / "vigie.duckdb",
                        "SELECT incident_id FROM incidents WHERE status = 'running'",
                    )
                time.sleep(1)
            assert started, client.read_flow_run(run.id).state
            client.set_flow_run_state(run.id, Cancelling(), force=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                "rapport d’incident" in s for s in _subjects(mail_sink)
            ):
                time.sleep(1)
            state = client.read_flow_run(run.id).state
        assert "[Vigie][INCIDENT] marque — rapport d’incident (arrêté)" in _subjects(mail_sink)
        assert state is not None and state.name in {"Cancelled", "Cancelling"}
        [(status, report)] = _rows(
            tmp_path / "wh" / "vigie.duckdb", "SELECT status, report FROM incidents"
        )
        assert status == "stopped" and "marque" in report
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a worker slow to stop on a loaded machine (seen in CI)
            worker.kill()
            worker.wait()
