"""The errors a newcomer meets first, through the real `vigie` command: one line on stderr,
no traceback, and the line says what to do next."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import vigie_here
from tests.configs import MINIMAL_TOML, write_toml
from tests.e2e.test_serve_cli import _vigie  # vigie in a folder, without PREFECT_API_URL

EXAMPLE = Path(__file__).resolve().parents[2] / "vigie.example.toml"


def _vigie_here(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`vigie` in a folder, without PREFECT_API_URL and VIGIE_CONFIG but those `env` gives,
    inside this process: these errors are met before any Prefect run."""
    return vigie_here(*args, env=env, drop=["PREFECT_API_URL", "VIGIE_CONFIG"], cwd=cwd)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("vigie: ")
    return result.stderr.strip()


def test_no_configuration_file_says_to_run_vigie_init(tmp_path: Path) -> None:
    line = _one_line_error(_vigie_here("check", cwd=tmp_path))
    assert line.startswith("vigie: vigie.toml: no such configuration file")
    assert "run `vigie init` to create one" in line
    assert "--config FILE" in line and "VIGIE_CONFIG" in line


def test_invalid_toml_gives_the_line_and_says_to_fix_it(tmp_path: Path) -> None:
    broken = MINIMAL_TOML.replace('name = "Laiterie Boréale"', "name = Laiterie Boréale")
    config = write_toml(tmp_path, broken)
    line = _one_line_error(_vigie_here("--config", str(config), "check", cwd=tmp_path))
    assert line.startswith(f"vigie: {config}: invalid TOML at line 2, column 8: ")
    assert "fix that line (text values need quotes), then run `vigie check`" in line


def test_a_missing_secret_names_the_variable_to_set(tmp_path: Path) -> None:
    unset = {"VIGIE_SMTP_PASSWORD": ""}  # empty counts as unset, whatever this shell has
    line = _one_line_error(_vigie_here("--config", str(EXAMPLE), "check", cwd=tmp_path, env=unset))
    assert "VIGIE_SMTP_PASSWORD is not set" in line
    assert "export VIGIE_SMTP_PASSWORD=..." in line


def test_a_locked_warehouse_says_to_wait_or_stop_the_holder(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML + '\n[warehouse]\npath = "wh.duckdb"\n')
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(60)",
            str(tmp_path / "wh.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        result = _vigie_here("--config", str(config), "status", cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    line = _one_line_error(result)
    assert f"locked by another process (PID {holder.pid}, waited 5 s)" in line
    assert "wait for the running cycle or command to finish, or stop that process" in line


@pytest.mark.parametrize("command", [["run", "--once"], ["drill", "exercice"]])
def test_a_prefect_server_that_does_not_answer_says_to_start_it(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.socket() as closed:  # a free port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    config = write_toml(tmp_path, MINIMAL_TOML)
    # `vigie run --once` ends this error with os._exit (cli.common.exit_now): a process of its
    # own; `vigie drill` returns its exit code, and runs here.
    run = _vigie if command[0] == "run" else _vigie_here
    result = run("--config", str(config), *command, cwd=tmp_path, env={"PREFECT_API_URL": url})
    line = _one_line_error(result)
    assert f"the Prefect API at {url} does not answer" in line
    assert "start it (`prefect server start`), or unset PREFECT_API_URL" in line
