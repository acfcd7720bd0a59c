"""Every deployment in prefect.yaml points at a real flow that accepts its parameters, and every
entrypoint imports in a fresh process without side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from vigie import TELEMETRY_OFF

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
IDS = [d["name"] for d in DEPLOYMENTS]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_deployment_entrypoint_resolves_to_a_flow(
    deployment: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    flow = load_flow_from_entrypoint(str(deployment["entrypoint"]))
    assert isinstance(flow, Flow)
    accepted = set(flow.parameters.properties)
    assert set(deployment.get("parameters") or {}) <= accepted  # type: ignore[arg-type]


def test_every_deployment_runs_on_the_vigie_pool_with_telemetry_off() -> None:
    for deployment in DEPLOYMENTS:
        pool = deployment["work_pool"]
        assert pool["name"] == "vigie-pool"
        assert pool["job_variables"]["env"]["DO_NOT_TRACK"] == "1"


def test_manual_deployments_have_null_schedules_never_an_empty_list() -> None:
    # `schedules: []` would not clear the schedules of an earlier deploy (STACK.md gotcha 7).
    for deployment in DEPLOYMENTS:
        assert deployment.get("schedules") is None or len(deployment["schedules"]) > 0


# Imports the entrypoint, then says what it found: the flow's name, its parameters.
_PROBE = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
flow = load_flow_from_entrypoint(sys.argv[1])
print(json.dumps({"name": flow.name, "parameters": flow.parameters.model_dump()}))
"""


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=IDS)
def test_entrypoint_imports_in_a_fresh_process_without_side_effects(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    cwd, home = tmp_path / "cwd", tmp_path / "prefect-home"
    cwd.mkdir()
    home.mkdir()
    # No API URL: an import that talked to Prefect would start a temporary server, which
    # creates its database in PREFECT_HOME.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VIGIE_"))}
    env.update(TELEMETRY_OFF, PREFECT_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    entrypoint = f"{ROOT}/{deployment['entrypoint']}"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, entrypoint],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(cwd.iterdir()) == []  # no file, no warehouse, no log in the working folder
    assert not list(home.rglob("*.db")), list(home.rglob("*"))  # no server was started
    assert not list(tmp_path.rglob("*.duckdb"))
    # The contract: flow name = deployment name, so the deployment is "<name>/<name>".
    assert found["name"] == deployment["name"]
    # The UI shows a form with help for every parameter.
    properties = found["parameters"]["properties"]
    undescribed = [name for name, field in properties.items() if not field.get("description")]
    assert undescribed == []
    assert "config_path" in properties


def test_every_deployment_says_what_it_does() -> None:
    for deployment in DEPLOYMENTS:
        assert len(str(deployment.get("description") or "").split()) >= 5, deployment["name"]


def test_the_incident_form_has_plain_labels_lists_without_a_none_switch_and_no_example_left() -> (
    None
):
    from flows.incident import incident_mode

    form = incident_mode.parameters.model_dump_for_openapi()
    for name, field in form["properties"].items():
        # The form's label: words, not the parameter's snake_case name.
        assert field["title"] != name and "_" not in field["title"], (name, field["title"])
        assert field.get("description"), name
        assert "anyOf" not in field, (name, field)  # a "list | None" switch in the form
    assert form["properties"]["extra_queries"]["default"] == []
    assert form["required"] == ["name"]
    text = json.dumps(form, ensure_ascii=False).lower()
    assert "lait" not in text and "fromage" not in text  # the demo's dairy, not the user's
    assert incident_mode.flow_run_name == "incident {name}"
