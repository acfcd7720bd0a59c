"""The Prefect server killed while a cycle runs, then restarted. `vigie run` finishes the cycle
(its data loaded, its emails sent), says in one line that its run is not recorded in Prefect,
ends without waiting minutes on Prefect's queues, and the next cycle, on the restarted server,
records how the killed cycle's run really ended, collects what came meanwhile and is recorded
as usual. A run served by `vigie serve` is recorded
once the server is back, and `vigie serve` goes on serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tests.conftest import ConfigWriter
from tests.e2e.prefect_server import ManagedProcess, running_prefect_server
from tests.e2e.served import (
    copy_project,
    prefect_client,
    scenario_sources,
    start_serve,
    wait_final,
    wait_served,
)
from vigie import scenario
from vigie.localservers import FeedServer, MailSink, free_port

# The slow feed holds the cycle in its fetch long enough to kill the server under it.
SLOW_S = 6.0


def _slow_feed(now: datetime, count: int) -> str:
    items = [
        scenario.Item(
            f"Laiterie Boréale : article {n} du fil lent",
            f"https://lent.example/articles/{n}",
            "La Laiterie Boréale en bref.",
            timedelta(minutes=5 + n),
        )
        for n in range(count)
    ]
    return scenario.rss_document("Fil lent", items, now)


def _mentions(config: Path) -> int:
    with duckdb.connect(str(config.parent / "wh" / "vigie.duckdb"), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM mentions").fetchone()
    assert row is not None
    return int(row[0])


def _unrecorded(config: Path) -> list[str]:
    """The cycles whose run `vigie run` could not record in Prefect."""
    with duckdb.connect(str(config.parent / "wh" / "vigie.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT cycle_id FROM cycles WHERE unrecorded_at IS NOT NULL")
        return [str(row[0]) for row in rows.fetchall()]


def _run(env: dict[str, str], config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(config), "run", "--once"],
        cwd=config.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_server_killed_mid_cycle_loses_nothing_and_the_next_cycle_catches_up(
    feed_server: FeedServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", now)
    slow = feed_server.set("/slow.xml", _slow_feed(now, 3), delay_s=SLOW_S)
    sources = [*scenario_sources(urls), {"name": "fil-lent", "url": slow, "tier": 2}]
    home, port = tmp_path / "prefect-home", free_port()
    home.mkdir()
    with MailSink(tmp_path / "inbox") as sink:
        config = write_config(sources=sources, smtp_port=sink.port)
        with running_prefect_server(home=home, port=port) as server:
            # Two retries instead of five keep the wait for the dead API short; it is bounded
            # either way (Prefect's back-off), and the outcome is the same.
            env = {**server.env, "PREFECT_CLIENT_MAX_RETRIES": "2"}
            cycle = _run(env, config)
            deadline = time.monotonic() + 300
            while not any(path == "/slow.xml" for path, _ in feed_server.requests):
                assert cycle.poll() is None, cycle.communicate()
                assert time.monotonic() < deadline, "the cycle never reached the slow feed"
                time.sleep(0.1)
            os.killpg(server.server.process.pid, signal.SIGKILL)
            out, err = cycle.communicate(timeout=600)  # a hang guard, not a timing

        assert cycle.returncode == 1, err[-3000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"vigie: the Prefect API at {server.api_url} stopped answering")
        assert "was loaded and its emails sent, but its run is not recorded in Prefect" in last
        assert "Traceback" not in err and "Error logging to API" not in err, err[-3000:]
        # The cycle itself went to its end: its line is printed, its mentions are loaded.
        assert out.startswith("cycle ") and "sources ok" in out, out
        first = _mentions(config)
        assert first > 0
        assert any(path == "/slow.xml" for path, _ in feed_server.requests)
        unrecorded_before = _unrecorded(config)
        assert len(unrecorded_before) == 1  # noted, for the next cycle to record

        # While the server was away, the news went on: the next cycle collects it.
        later = datetime.now(UTC)
        scenario.publish(feed_server, "burst", later)
        feed_server.set("/slow.xml", _slow_feed(later, 6))
        with running_prefect_server(home=home, port=port) as restarted:
            cycle = _run(restarted.env, config)
            out, err = cycle.communicate(timeout=600)
            assert cycle.returncode == 0, err[-3000:]
            with prefect_client(restarted) as client:
                runs = client.read_flow_runs()
        # The killed cycle's run, left Running, is recorded as it really ended.
        (killed_cycle,) = unrecorded_before
        assert (
            f"vigie: the run of cycle {killed_cycle}, left Running when the Prefect server went "
            "away, is now recorded as Completed"
        ) in err, err[-3000:]
        assert len(runs) == 2 and all(r.state and r.state.is_completed() for r in runs), runs
        killed = next(r for r in runs if r.state and killed_cycle in (r.state.message or ""))
        assert killed.state is not None and "while the Prefect server was away" in str(
            killed.state.message
        )
        assert _unrecorded(config) == []
        second = _mentions(config)
        assert second > first, (first, second)
        assert f"{second - first} new mentions" in out, out


def test_vigie_serve_outlives_a_server_restart_and_its_run_killed_mid_cycle_is_recorded(
    feed_server: FeedServer, write_config: ConfigWriter, tmp_path: Path
) -> None:
    """The scheduled path: a served watch-cycle run whose server is killed under it finishes
    its cycle, and is recorded once the server is back (its final state is retried); `vigie
    serve` keeps serving, and the next run collects what came meanwhile."""
    now = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", now)
    slow = feed_server.set("/slow.xml", _slow_feed(now, 3), delay_s=SLOW_S)
    project = copy_project(tmp_path / "project")
    home, port = tmp_path / "prefect-home", free_port()
    home.mkdir()
    with MailSink(tmp_path / "inbox") as sink:
        config = write_config(
            sources=[*scenario_sources(urls), {"name": "fil-lent", "url": slow, "tier": 2}],
            smtp_port=sink.port,
        )
        serve: ManagedProcess | None = None
        try:
            with running_prefect_server(home=home, port=port) as server:
                # Its runs retry for minutes, not one (8 retries, not 5), so that the killed
                # run's final state reaches the restarted server however slowly it starts.
                retrying = {"PREFECT_CLIENT_MAX_RETRIES": "8"}
                serve = start_serve(server, "serve", config, project, tmp_path, retrying)
                server.children.remove(serve)  # it must outlive this server
                with prefect_client(server) as client:
                    served = wait_served(client, config, ["watch-cycle"], serve)
                    first = client.create_flow_run_from_deployment(served["watch-cycle"].id)
                deadline = time.monotonic() + 300
                while not any(path == "/slow.xml" for path, _ in feed_server.requests):
                    assert time.monotonic() < deadline, serve.output()[-3000:]
                    time.sleep(0.1)
                os.killpg(server.server.process.pid, signal.SIGKILL)
            later = datetime.now(UTC)
            scenario.publish(feed_server, "burst", later)
            feed_server.set("/slow.xml", _slow_feed(later, 6))
            with running_prefect_server(home=home, port=port) as restarted:
                with prefect_client(restarted) as client:
                    killed = wait_final(client, first.id, serve, 600)
                    mentions_then = _mentions(config)
                    served = wait_served(client, config, ["watch-cycle"], serve)
                    second = client.create_flow_run_from_deployment(served["watch-cycle"].id)
                    after = wait_final(client, second.id, serve, 600)
                assert serve.process.poll() is None, serve.output()[-3000:]
        finally:
            if serve is not None:
                serve.stop()
    assert killed.state is not None and killed.state.is_completed(), serve.output()[-3000:]
    assert after.state is not None and after.state.is_completed(), serve.output()[-3000:]
    assert mentions_then > 0
    assert _mentions(config) > mentions_then
