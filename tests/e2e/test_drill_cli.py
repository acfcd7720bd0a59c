"""`vigie drill` as a user runs it (in this process: nothing here needs one of its own): wrong
input is one clear line before anything starts; a drill acknowledged from elsewhere prints its
result."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from tests.commands import vigie_here
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink
from warehouse.connection import open_warehouse
from warehouse.store import Store


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["drill", "X"],
            "vigie: the drill topic 'drill-x' is also a watch name in the configuration: "
            "choose another drill name",
        ),
        (["drill", "Y", "--ack-wait", "0"], "vigie: --ack-wait must be between 1 and 1440 minutes"),
        (["drill", " "], "vigie: the drill's name must have 1 to 80 characters"),
    ],
    ids=["topic-is-a-watch", "wait-out-of-bounds", "blank-name"],
)
def test_a_drill_that_cannot_run_is_one_line_and_exit_2(
    write_config: ConfigWriter, args: list[str], line: str
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
        smtp_port=25,
        extra='\n[[watch]]\nname = "drill-x"\nquery = "exercice"\n',
    )
    result = vigie_here("--config", str(config), *args)
    assert result.returncode == 2
    assert result.stderr.strip() == line
    assert not (config.parent / "wh").exists()  # nothing was started or written


DRILL_ARGS = ("drill", "Exercice CLI", "--ack-wait", "5", "--json")


@pytest.mark.prefect
def test_vigie_drill_runs_the_drill_and_prints_its_result(
    prefect_harness: str, write_config: ConfigWriter, mail_sink: MailSink
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
        smtp_port=mail_sink.port,
    )
    warehouse = config.parent / "wh" / "vigie.duckdb"

    def acknowledge() -> None:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if not warehouse.exists():
                continue
            with open_warehouse(warehouse) as con:
                rows = con.execute(
                    "SELECT a.alert_id FROM alerts a JOIN outbox o ON o.alert_id = a.alert_id "
                    "WHERE a.drill AND o.sent_at IS NOT NULL"
                ).fetchall()
                if rows:
                    Store(con).acknowledge_alert(rows[0][0], "Louis Tremblay", datetime.now(UTC))
                    return

    other = threading.Thread(target=acknowledge, daemon=True)
    other.start()
    # The drill's flow runs here, recorded on the session's Prefect server; the acknowledgement
    # comes from this thread, as it would from a member's `vigie ack`.
    result = vigie_here(
        "--config",
        str(config),
        *DRILL_ARGS,
        env={"PREFECT_API_URL": prefect_harness, "PREFECT_LOGGING_LEVEL": "WARNING"},
    )
    other.join(timeout=5)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert printed["drill_id"] == "drill-exercice-cli"
    assert printed["status"] == "acknowledged" and printed["acknowledged_by"] == "Louis Tremblay"
    assert printed["time_to_detect_s"] > 0 and printed["time_to_ack_s"] >= 0
    assert [m["X-Vigie-Drill"] for m in mail_sink.messages()] == ["yes", "yes"]
