"""`vigie check` and `vigie serve` as a user runs them, about prefect.yaml (no Prefect server:
what needs one is in test_deployments_server.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.commands import vigie, vigie_here
from tests.configs import MINIMAL_TOML, write_toml

ROOT = Path(__file__).resolve().parents[2]


def _vigie(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return vigie(*args, env=env, drop=["PREFECT_API_URL", "VIGIE_CONFIG"], cwd=cwd)


def _vigie_here(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`_vigie` inside this process, for `vigie check` (`vigie serve` runs as a process)."""
    return vigie_here(*args, env=env, drop=["PREFECT_API_URL", "VIGIE_CONFIG"], cwd=cwd)


def test_check_warns_in_one_line_when_prefect_yaml_disagrees_with_the_schedule(
    tmp_path: Path,
) -> None:
    shutil.copy(ROOT / "prefect.yaml", tmp_path / "prefect.yaml")
    config = write_toml(
        tmp_path,
        MINIMAL_TOML + '\n[schedule]\nwatch_every_minutes = 15\ndigest_cron = "0 7 * * *"\n',
    )
    result = _vigie_here("--config", str(config), "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in result.stdout.splitlines() if "prefect.yaml disagrees" in line]
    assert "prefect.yaml decides what runs" in warning
    assert "watch-cycle runs every 600 s, schedule.watch_every_minutes is 15 (900 s)" in warning
    assert "schedule.digest_cron '0 7 * * *' America/Toronto is not a digest cron" in warning


def test_check_of_the_example_configuration_in_the_project_has_no_warning() -> None:
    result = _vigie_here(
        "--config", "vigie.example.toml", "check", cwd=ROOT, env={"VIGIE_SMTP_PASSWORD": "x"}
    )
    assert result.returncode == 0, result.stderr
    assert "Warning: " not in result.stdout


def test_serve_refuses_in_one_line_without_prefect_api_url(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML)
    result = _vigie("--config", str(config), "serve", cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith("vigie: PREFECT_API_URL is not set")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_serve_without_a_prefect_yaml_says_where_it_looked(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML)
    result = _vigie(
        "--config",
        str(config),
        "serve",
        cwd=tmp_path,
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "vigie: prefect.yaml: not found (run from the project folder, or give --prefect-yaml)"
    )
