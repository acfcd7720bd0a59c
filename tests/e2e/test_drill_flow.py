"""The drill as a Prefect flow on a real (temporary) Prefect server: a synthetic crisis served on
127.0.0.1 goes through the real pipeline, its alert email reaches a real SMTP server marked as a
drill, an acknowledgement from elsewhere ends the wait, and real figures do not move."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.localservers import FeedServer, MailSink
from vigie.settings import load_settings
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

# What only the watch cycle does; every other step of the cycle must run in a drill too.
REAL_CYCLE_ONLY = {
    "load-config",
    "prepare-warehouse",
    "check-source-health",
    "flag-degraded-sources",
    "escalate",
    "apply-retention",
    "finish-cycle",
    "emit-watch-event",
    "read-top-stories",
    "read-situation",  # the cell's view of the real watch: a drill's alert is not its situation
    "publish-summary",
    "publish-top-stories",
    "publish-validation",
}


def _task_names(flow_name: str) -> set[str]:
    """The names of the tasks the latest run of `flow_name` ran."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    return {task.name.rsplit("-", 1)[0] for task in tasks}


def _real_watch(feed_server: FeedServer, write_config: ConfigWriter, smtp_port: int) -> Path:
    """A configuration with the bundled scenario's real sources, one watch cycle already run."""
    from flows.watch_cycle import watch_cycle

    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    sources = [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]
    # Adaptive polling on, as a real configuration has it: the drill's cycles, seconds apart,
    # still fetch each of its sources.
    config = write_config(sources=sources, smtp_port=smtp_port, adaptive_polling=True)
    watch_cycle(str(config))
    return config


def _digest_and_status(config: Path) -> tuple[object, dict[str, int], list[object], list[object]]:
    from tasks.notify.digest import build_digest, default_end
    from warehouse.store import Store

    settings = load_settings(config)
    end = default_end(datetime.now(UTC), settings.organisation.timezone) + timedelta(hours=1)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        return (
            build_digest(store, settings, period="daily", end=end),
            store.counts(drills=False),
            store.open_alerts(),
            store.source_health(),
        )


def _acknowledge_when_alerted(config: Path, by: str, use_cli: bool) -> threading.Thread:
    """Someone of the cell, elsewhere: waits for the drill alert, then takes charge of it."""
    from warehouse.store import Store

    warehouse = load_settings(config).warehouse_path

    def act() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(1.0)
            with open_warehouse(warehouse) as con:
                rows = con.execute(
                    "SELECT a.alert_id FROM alerts a JOIN outbox o ON o.alert_id = a.alert_id "
                    "WHERE a.drill AND a.status = 'open' AND o.sent_at IS NOT NULL"
                ).fetchall()
            if not rows:
                continue
            time.sleep(1.0)  # a person takes a moment to read the email
            if use_cli:
                command = ["--config", str(config), "ack", str(rows[0][0]), "--by", by]
                subprocess.run(
                    [sys.executable, "-m", "cli.main", *command],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
            else:
                with open_warehouse(warehouse) as con:
                    Store(con).acknowledge_alert(rows[0][0], by, datetime.now(UTC))
            return

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_drill_alerts_the_cell_waits_for_the_ack_and_reports_the_times(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.drill import drill

    config = _real_watch(feed_server, write_config, mail_sink.port)
    before = _digest_and_status(config)
    received_before = len(mail_sink.messages())

    acknowledger = _acknowledge_when_alerted(config, "Awa Diallo", use_cli=True)
    result = drill("Exercice de novembre", ack_wait_minutes=5, config_path=str(config))
    acknowledger.join(timeout=10)

    assert result["status"] == "acknowledged", result
    assert result["acknowledged_by"] == "Awa Diallo"
    assert result["drill_id"] == "drill-exercice-de-novembre"
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        [row] = con.execute(
            "SELECT status, injected_at, detected_at, alert_sent_at, acknowledged_at, "
            "time_to_detect_s, time_to_ack_s, alert_id FROM drills"
        ).fetchall()
        alert_status = con.execute(
            "SELECT status, drill FROM alerts WHERE alert_id = ?", [row[7]]
        ).fetchall()
    status, injected, detected, sent, acked, ttd, tta, _ = row
    assert status == "acknowledged"
    assert injected < detected and sent < acked
    assert 0 < ttd < 120 and 0 < tta < 120
    assert ttd == pytest.approx((detected - injected).total_seconds())
    assert tta == pytest.approx((acked - sent).total_seconds())
    assert alert_status == [("resolved", True)]  # the drill closes its alert when it ends

    new = mail_sink.messages()[received_before:]
    assert [m["X-Vigie-Drill"] for m in new] == ["yes", "yes"]
    alert_mail, report = new
    assert alert_mail["Subject"].startswith("[EXERCICE] [Vigie][")
    assert (
        "EXERCICE — ceci n’est pas une vraie crise" in alert_mail.get_body(("html",)).get_content()
    )
    assert report["Subject"] == "[EXERCICE] Vigie : bilan de l’exercice « Exercice de novembre »"
    text = report.get_body(("plain",)).get_content()
    assert "Prise en charge : Awa Diallo" in text and "Délai de détection :" in text

    # Real figures are the same as before the drill: digest, status counts, alerts, sources.
    assert _digest_and_status(config) == before

    # One pipeline: the drill ran every step of the watch cycle but those only real cycles run.
    assert _task_names("watch-cycle") - REAL_CYCLE_ONLY <= _task_names("drill")

    # The same drill again: reported as it was, nothing sent twice.
    again = drill("Exercice de novembre", ack_wait_minutes=5, config_path=str(config))
    assert again == result
    assert len(mail_sink.messages()) == received_before + 2


@pytest.mark.slow  # waits out the one minute the form allows at least
def test_a_drill_nobody_acknowledges_ends_with_that_result(
    prefect_harness: str, tmp_path: Path, write_config: ConfigWriter
) -> None:
    from flows.drill import drill

    with MailSink(tmp_path / "inbox-2") as sink:
        config = write_config(
            sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
            smtp_port=sink.port,
            language="en",
        )
        started = time.monotonic()
        result = drill("Unanswered", ack_wait_minutes=1, config_path=str(config))
        elapsed = time.monotonic() - started
        messages = sink.messages()
    assert result["status"] == "not_acknowledged", result
    assert result["time_to_ack_s"] is None and result["time_to_detect_s"] > 0
    assert 60 <= elapsed < 240
    assert [m["Subject"].split(" ")[0] for m in messages] == ["[DRILL]", "[DRILL]"]
    assert "Not acknowledged within 1 min." in messages[1].get_body(("plain",)).get_content()
