"""Progress of long commands as a user sees it: a redrawn bar on a terminal (a real
pseudo-terminal), no redraws in a pipe or a log, and stdout left to the command's output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.commands import VIGIE
from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer, MailSink

FEEDS = 40
REDRAW = "\r\x1b[2K"  # rich redraws the line over itself


def _feed(n: int) -> str:
    published = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    items = "".join(
        f"<item><title>La Laiterie Boréale, épisode {n}.{i}</title>"
        f"<link>https://journal{n}.example/a/{i}</link><pubDate>{published}</pubDate></item>"
        for i in range(3)
    )
    channel = f"<channel><title>J{n}</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


@pytest.fixture
def many_feeds_config(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> Path:
    """A configuration watching FEEDS feeds of the local feed server, three mentions each."""
    sources = [
        {"name": f"Journal {n}", "url": feed_server.set(f"/j{n}.xml", _feed(n)), "tier": 2}
        for n in range(FEEDS)
    ]
    return write_config(sources=sources, smtp_port=mail_sink.port)


def _on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `vigie` with stderr on a pseudo-terminal; its exit code, stdout and terminal output."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*VIGIE, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, **env},
    )
    os.close(terminal)
    shown: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process and its terminal are gone
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = process.communicate(timeout=300)
    reader.join(timeout=30)
    os.close(controller)
    return process.returncode, out.decode(), b"".join(shown).decode(errors="replace")


def _in_pipes(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VIGIE, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


@pytest.mark.prefect
def test_a_first_collection_shows_fetch_progress_on_a_terminal_only(
    prefect_harness: str, many_feeds_config: Path
) -> None:
    config = many_feeds_config
    env = {"PREFECT_API_URL": prefect_harness}
    code, out, terminal = _on_terminal(["--config", str(config), "run", "--once", "--json"], env)
    assert code == 0, terminal[-2000:]
    assert json.loads(out)["sources_ok"] == FEEDS  # stdout stays one JSON object
    assert f"{REDRAW}fetching ━" in terminal
    assert f"━ {FEEDS}/{FEEDS} sources (100%)" in terminal

    piped = _in_pipes(["--config", str(config), "run", "--once", "--json"], env)
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert json.loads(piped.stdout)["sources_failed"] == {}  # feeds unchanged since: 304
    assert "\r" not in piped.stderr
    assert "━" not in piped.stderr
    assert len([line for line in piped.stderr.splitlines() if "fetching" in line]) <= 4


@pytest.mark.prefect
def test_an_export_shows_rows_written_on_a_terminal_only(
    prefect_harness: str, many_feeds_config: Path, tmp_path: Path
) -> None:
    config = many_feeds_config
    env = {"PREFECT_API_URL": prefect_harness}
    collected = _in_pipes(["--config", str(config), "run", "--once", "--json"], env)
    assert collected.returncode == 0, collected.stderr[-2000:]
    rows = json.loads(collected.stdout)["new_mentions"]
    assert rows == 3 * FEEDS
    export = ["--config", str(config), "db", "export", "--since", "2020-01-01"]
    export += ["--until", "2100-01-01", "--format", "csv"]

    code, out, terminal = _on_terminal([*export, "--output", str(tmp_path / "a.csv")], env)
    assert code == 0, terminal
    assert f"{rows} mentions written to" in out
    assert f"{REDRAW}exporting ━" in terminal
    assert f"━ {rows}/{rows} rows (100%)" in terminal

    piped = _in_pipes([*export, "--output", str(tmp_path / "b.csv")], env)
    assert piped.returncode == 0, piped.stderr
    assert f"{rows} mentions written to" in piped.stdout
    assert "\r" not in piped.stderr and "━" not in piped.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
