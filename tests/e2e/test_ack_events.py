"""`vigie ack` tells Prefect (event `vigie.alert.acknowledged`) when a Prefect server is
configured and answers, and stays a quick, quiet command without one: no temporary server, no
traceback, one line when the configured server is down. A real server; the command runs in this
process, with the Prefect settings its environment gives (`vigie_here`)."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.commands import vigie_here
from tests.conftest import ConfigWriter
from tests.e2e.prefect_events import wait_for_events
from tests.e2e.test_acknowledge_flow import _open_alert
from vigie.localservers import free_port

UNUSED_FEED = [{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}]


def _ack(
    config: Path, alert_id: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `vigie ack` with `env` (and no inherited PREFECT_API_URL); return it and its time."""
    started = time.monotonic()
    command = ["ack", alert_id, "--by", "Awa Diallo"]
    result = vigie_here("--config", str(config), *command, env=env, drop=["PREFECT_API_URL"])
    return result, time.monotonic() - started


def test_vigie_ack_without_a_prefect_server_emits_nothing_and_starts_none(
    tmp_path: Path, write_config: ConfigWriter
) -> None:
    config = write_config(sources=UNUSED_FEED, smtp_port=25)
    alert_id = _open_alert(config)
    home = tmp_path / "prefect-home"
    result, _ = _ack(config, alert_id, {"PREFECT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{alert_id} pris en charge par Awa Diallo\n"
    assert result.stderr == ""
    # A temporary Prefect server would have created its database here.
    assert not (home / "prefect.db").exists()


def test_vigie_ack_with_its_prefect_server_down_says_so_in_one_line(
    tmp_path: Path, write_config: ConfigWriter
) -> None:
    config = write_config(sources=UNUSED_FEED, smtp_port=25)
    alert_id = _open_alert(config)
    api_url = f"http://127.0.0.1:{free_port()}/api"
    result, elapsed = _ack(
        config, alert_id, {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "ph")}
    )
    assert result.returncode == 0
    assert result.stdout == f"{alert_id} pris en charge par Awa Diallo\n"
    assert result.stderr.splitlines() == [
        f"Prefect server at {api_url} did not answer: no Prefect event emitted"
    ]
    assert elapsed < 30  # imports included; no retrying events client at exit


@pytest.mark.prefect
def test_vigie_ack_sends_the_acknowledged_event_to_the_configured_prefect_server(
    prefect_harness: str, tmp_path: Path, write_config: ConfigWriter
) -> None:
    config = write_config(sources=UNUSED_FEED, smtp_port=25)
    alert_id = _open_alert(config)
    since = datetime.now(UTC) - timedelta(seconds=1)
    result, _ = _ack(
        config, alert_id, {"PREFECT_API_URL": prefect_harness, "PREFECT_HOME": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr

    def mine(events: list[Any]) -> list[Any]:
        return [e for e in events if e.resource.id == f"vigie.alert.{alert_id}"]

    [event] = mine(wait_for_events(since, lambda events: bool(mine(events))))
    assert event.event == "vigie.alert.acknowledged"
    assert event.resource["vigie.alert.topic"] == "marque"
    assert event.resource["vigie.alert.level"] == "crise"
    assert event.resource["vigie.drill"] == "false"
    assert event.payload["by"] == "Awa Diallo"
    assert event.payload["status"] == "acknowledged"
