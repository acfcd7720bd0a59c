"""Every deployment in prefect.yaml points at a real flow that accepts its parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
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
