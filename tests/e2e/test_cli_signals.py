"""The command line under the signals people send it, as real processes: a reader that goes away
(`vigie check | head -1`) and Ctrl-C during a cycle (SIGINT to the process group, as a terminal
sends it) while a slow local feed holds the fetch step."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.commands import VIGIE
from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Le Quotidien</title>
<item><title>Laiterie Boréale : nouvelle usine</title><link>https://example.org/a</link>
<guid>a</guid><pubDate>Thu, 26 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>"""


@pytest.mark.parametrize("command", [["check"], ["cell", "show"], ["--help"]], ids=" ".join)
def test_a_reader_gone_before_the_output_ends_the_command_quietly(
    write_config: ConfigWriter, command: list[str]
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/a"}], smtp_port=2525
    )
    args = command if command == ["--help"] else ["--config", str(config), *command]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write meets EPIPE
    try:
        result = subprocess.run(
            [*VIGIE, *args],
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=config.parent,
        )
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stderr == ""
    assert result.returncode in (0, 141)  # argparse's --help exits 0 by itself


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_cycle_says_what_was_kept_and_exits_130(
    write_config: ConfigWriter, feed_server: FeedServer, prefect_harness: str
) -> None:
    slow = feed_server.set("/slow.xml", FEED, delay_s=8)
    config = write_config(sources=[{"name": "Lent", "url": slow}], smtp_port=2525, extra="")
    err = config.parent / "stderr.txt"
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [*VIGIE, "--config", str(config), "run", "--once"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=config.parent,
            env={**os.environ, "PREFECT_API_URL": prefect_harness},
            start_new_session=True,
            # As a shell starts a command: Ctrl-C's default action, whatever this test worker
            # inherited (a worker where SIGINT was set to SIG_IGN passes it on to its children,
            # and Python then never raises KeyboardInterrupt: seen in full runs, never alone).
            preexec_fn=_default_sigint,
        )
    try:
        deadline = time.monotonic() + 180
        while not feed_server.requests and time.monotonic() < deadline:
            assert process.poll() is None, err.read_text(encoding="utf-8")
            time.sleep(0.2)
        assert feed_server.requests, "the cycle never fetched the slow feed"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    stderr_text = err.read_text(encoding="utf-8")
    assert code == 130, stderr_text[-3000:]
    vigie_lines = [line for line in stderr_text.splitlines() if line.startswith("vigie: ")]
    assert len(vigie_lines) == 1, stderr_text[-3000:]
    assert "interrupted" in vigie_lines[0] and "next cycle" in vigie_lines[0]
    assert str(config.parent / "wh" / "vigie.duckdb") in vigie_lines[0]
