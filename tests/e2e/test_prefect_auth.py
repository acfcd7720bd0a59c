"""Prefect's API authentication, as README's server setup turns it on: a real `prefect server
start` with PREFECT_SERVER_API_AUTH_STRING refuses a client without PREFECT_API_AUTH_STRING (and
so keeps its block documents from whoever reaches its port), and serves the one that has it."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import ConfigWriter
from tests.e2e.prefect_server import running_prefect_server


def _filter_blocks(api_url: str, auth: str | None) -> int:
    request = urllib.request.Request(
        f"{api_url}/block_documents/filter",
        data=json.dumps({"include_secrets": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_a_server_with_an_auth_string_refuses_a_client_without_it(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    auth = f"vigie:{secrets.token_urlsafe(16)}"
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/rss.xml"}],
        smtp_port=2525,
        extra='[[cell.members]]\nname = "Nadia"\nemail = "nadia@laiterie-boreale.example"\n'
        'role = "operator"\nlevel = 1\n',
    )
    with running_prefect_server(server_env={"PREFECT_SERVER_API_AUTH_STRING": auth}) as server:
        assert _filter_blocks(server.api_url, None) == 401
        assert _filter_blocks(server.api_url, "vigie:wrong") == 401
        assert _filter_blocks(server.api_url, auth) == 200

        def vigie(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "--config",
                    str(config),
                    "watchdog",
                    "--automation",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                stdin=subprocess.DEVNULL,
                cwd=config.parent,
                env={**server.env, "PREFECT_CLIENT_MAX_RETRIES": "0", **env},
            )

        refused = vigie({})
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "401" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
        accepted = vigie({"PREFECT_API_AUTH_STRING": auth})
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr[-3000:]
        assert "Watchdog automation vigie-watchdog-" in accepted.stdout
        assert auth not in accepted.stdout + accepted.stderr + refused.stdout + refused.stderr
