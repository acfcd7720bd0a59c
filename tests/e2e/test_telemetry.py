"""Every entry point turns the telemetry of Prefect and Great Expectations off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vigie import TELEMETRY_OFF

ENTRY_POINTS = ["cli.main", "flows.watch_cycle", "tasks.enrich.validate"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_importing_an_entry_point_turns_telemetry_off(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    names = list(TELEMETRY_OFF)
    code = (
        f"import {module}, json, os; print(json.dumps({{k: os.environ.get(k) for k in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == TELEMETRY_OFF


def test_telemetry_stays_off_even_when_the_environment_turns_it_on() -> None:
    env = {**os.environ, "DO_NOT_TRACK": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "true"}
    code = (
        "import vigie, os; "
        "print(os.environ['DO_NOT_TRACK'], os.environ['PREFECT_SERVER_ANALYTICS_ENABLED'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "1 false"
