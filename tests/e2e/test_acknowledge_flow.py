"""Acknowledging an alert through a paused Prefect run, on a real (temporary) Prefect server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from tests.e2e.prefect_events import wait_for_events
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect


def _open_alert(config: Path) -> str:
    from tasks.detect.signals import Severity
    from tasks.detect.volume import TopicAssessment
    from tasks.notify.alerts import raise_alerts
    from vigie.models import VolumeSignal
    from vigie.settings import load_settings
    from warehouse.store import Store

    settings = load_settings(config)
    now = datetime.now(UTC)
    signal = VolumeSignal("marque", now - timedelta(hours=1), now, 40, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(72.0, "crise", {"volume": 35.0}, {})  # type: ignore[arg-type]
    with open_warehouse(settings.warehouse_path) as con:
        changes = raise_alerts(
            Store(con), settings, [TopicAssessment(signal, 0.99, severity)], now=now, run_url=None
        )
    return changes.opened[0]


def test_a_name_entered_in_the_paused_run_acknowledges_the_alert(
    prefect_harness: str, write_config: ConfigWriter
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.flow_runs import resume_flow_run

    from flows.acknowledge import acknowledge_alert

    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}], smtp_port=25
    )
    alert_id = _open_alert(config)
    since = datetime.now(UTC) - timedelta(seconds=1)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = acknowledge_alert(alert_id, str(config), 0.1)
        except BaseException as err:  # reported by the assertion below
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    run_name = f"acknowledge {alert_id}"
    paused = None
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while paused is None and time.monotonic() < deadline and worker.is_alive():
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[run_name]))
            )
            paused = next((r for r in runs if r.state and r.state.is_paused()), None)
            time.sleep(0.5)
    assert paused is not None, f"the run never paused: {outcome}"
    resume_flow_run(paused.id, run_input={"name": "  Awa   Diallo "})
    worker.join(timeout=120)
    assert outcome.get("result") == f"{alert_id} acknowledged by Awa Diallo", outcome
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        events = con.execute(
            "SELECT kind, detail->>'by' FROM alert_events WHERE alert_id = ? ORDER BY occurred_at",
            [alert_id],
        ).fetchall()
        status = con.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert_id]).fetchall()
    assert events == [("opened", None), ("acknowledged", "Awa Diallo")]
    assert status == [("acknowledged",)]
    # Automations hear of it: the Prefect event about the alert, linking to the run.
    [prefect_event] = wait_for_events(since, bool)
    assert prefect_event.event == "vigie.alert.acknowledged"
    assert prefect_event.resource.id == f"vigie.alert.{alert_id}"
    assert prefect_event.payload["by"] == "Awa Diallo"
    assert prefect_event.payload["ui_url"].endswith(f"/flow-run/{paused.id}")
    # The situation the cell reads names who took charge at once, from this run.
    from prefect.client.schemas.filters import FlowRunFilterId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[paused.id]))
        )
    [situation] = [a for a in artifacts if a.key == "situation"]
    assert "Awa Diallo" in str(situation.data) and "CRISE" in str(situation.data), situation.data


def test_the_alert_email_links_to_a_run_waiting_for_an_acknowledgement(
    prefect_harness: str, write_config: ConfigWriter
) -> None:
    from prefect import get_client

    from flows.acknowledge import acknowledge_alert
    from tasks.load import prefect_ack_link

    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}], smtp_port=25
    )
    # Without the deployment, the email keeps `vigie ack` only.
    assert prefect_ack_link(str(config))("al-missing") is None
    acknowledge_alert.to_deployment(name="acknowledge-alert").apply()
    # At the public address of the UI when one is configured ([prefect] public_ui_url).
    public = prefect_ack_link(str(config), "https://vigie.laiterie-boreale.example")("al-public")
    assert public is not None
    assert public.startswith("https://vigie.laiterie-boreale.example/runs/flow-run/")
    link = prefect_ack_link(str(config))("al-test")
    assert link is not None and "/runs/flow-run/" in link
    run_id = link.rsplit("/", 1)[1]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)  # type: ignore[arg-type]
    assert run.parameters == {"alert_id": "al-test", "config_path": str(config)}


def test_the_escalation_email_links_to_the_run_the_alert_email_linked_to(
    prefect_harness: str, write_config: ConfigWriter
) -> None:
    """The next level takes charge in the same paused run as the first: the alert keeps the
    link of its email (migration 021) and the escalation gives it, at the public address."""
    import html

    from flows.acknowledge import acknowledge_alert
    from tasks.detect.signals import Severity
    from tasks.detect.volume import TopicAssessment
    from tasks.load import prefect_ack_link
    from tasks.notify.alerts import raise_alerts
    from tasks.notify.escalation import escalate_unacknowledged
    from vigie.models import VolumeSignal
    from vigie.settings import load_settings
    from warehouse.store import Store

    public = "https://vigie.laiterie-boreale.example"
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
        smtp_port=25,
        extra=f'[prefect]\npublic_ui_url = "{public}"\n',
    )
    acknowledge_alert.to_deployment(name="acknowledge-alert").apply()
    settings = load_settings(config)
    now = datetime.now(UTC)
    signal = VolumeSignal("marque", now - timedelta(hours=1), now, 40, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(72.0, "crise", {"volume": 35.0}, {})  # type: ignore[arg-type]
    later = now + timedelta(minutes=settings.escalation.delay_minutes + 1)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        [alert_id] = raise_alerts(
            store,
            settings,
            [TopicAssessment(signal, 0.99, severity)],
            now=now,
            run_url=None,
            ack_link=prefect_ack_link(str(config), public),
        ).opened
        assert escalate_unacknowledged(store, settings, now=later) == [f"{alert_id}: level 1 -> 2"]
        rows = con.execute(
            "SELECT kind, html, coalesce(text, '') FROM outbox WHERE alert_id = ? ORDER BY kind",
            [alert_id],
        ).fetchall()
    [(_, alert_html, _), (kind, escalation_html, escalation_text)] = rows
    assert kind == "escalation"
    link = alert_html.split(f'href="{public}/runs/flow-run/', 1)[1].split('"', 1)[0]
    href = html.escape(f"{public}/runs/flow-run/{link}")
    assert f'href="{href}"' in escalation_html
    assert f"{public}/runs/flow-run/{link}" in escalation_text


def test_vigie_ack_on_the_command_line_closes_the_paused_run_of_the_alert(
    prefect_harness: str, write_config: ConfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    from cli.main import main
    from flows.acknowledge import acknowledge_alert

    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}], smtp_port=25
    )
    alert_id = _open_alert(config)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = acknowledge_alert(alert_id, str(config), 0.1)
        except BaseException as err:  # reported by the assertion below
            outcome["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    paused = None
    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        name = FlowRunFilter(name=FlowRunFilterName(any_=[f"acknowledge {alert_id}"]))
        while paused is None and time.monotonic() < deadline and worker.is_alive():
            runs = client.read_flow_runs(flow_run_filter=name)
            paused = next((r for r in runs if r.state and r.state.is_paused()), None)
            time.sleep(0.5)
        assert paused is not None, f"the run never paused: {outcome}"
        assert main(["--config", str(config), "ack", alert_id, "--by", "Awa Diallo"]) == 0
        worker.join(timeout=120)
        final = client.read_flow_run(paused.id)
    out, err = capsys.readouterr()
    # In the organisation's language (French here).
    assert out.strip() == f"{alert_id} pris en charge par Awa Diallo"
    assert f"la demande de prise en charge de {alert_id} dans Prefect est close" in err
    # The run no longer waits: it completed, having found the alert taken in charge.
    assert final.state is not None and final.state.is_completed(), final.state
    assert outcome.get("result") == f"{alert_id} was already acknowledged; nothing changed"
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        events = con.execute(
            "SELECT kind, detail->>'by' FROM alert_events WHERE alert_id = ? ORDER BY occurred_at",
            [alert_id],
        ).fetchall()
    assert events == [("opened", None), ("acknowledged", "Awa Diallo")]
