"""`vigie watchdog`, the dead man's switch for cron, on a real warehouse and a real SMTP server
(the command runs in this process: its state is in files, which a process of its own would read
the same way): told once per stop, again when the watch is back, nothing lost when SMTP is
down. The cycles are those the watch cycle records (`Store.begin_cycle` / `load_cycle` /
`finish_cycle`), dated in the past to stand for cycles that stopped."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.commands import prefect_api_vars, vigie_here
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink, free_port
from vigie.models import FetchResult, SourceOutcome
from vigie.settings import load_settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

OPERATOR = """
[[cell.members]]
name = "Nadia Ouellet"
email = "nadia.ouellet@laiterie-boreale.example"
role = "operator"
level = 1

[health]
watchdog_minutes = 60
"""
SOURCE = {"name": "Le Quotidien", "url": "http://127.0.0.1:9/rss.xml"}


def _watchdog(config: Path) -> subprocess.CompletedProcess[str]:
    return vigie_here(
        "--config",
        str(config),
        "watchdog",
        env={"VIGIE_SMTP_PASSWORD": ""},
        cwd=config.parent,
    )


def _cycle(config: Path, cycle_id: str, finished: datetime, status: str) -> None:
    """A completed cycle whose one source ended with `status` (ok, not_modified or error)."""
    settings = load_settings(config)
    started = finished - timedelta(minutes=1)
    fetch = FetchResult(
        source=SOURCE["name"],
        url=SOURCE["url"],
        status=status,  # type: ignore[arg-type]
        started_at=started,
        duration_s=0.2,
        error="timed out" if status == "error" else None,
    )
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        store.begin_cycle(cycle_id, started, None)
        outcome = SourceOutcome(fetch, status, error=fetch.error)  # type: ignore[arg-type]
        store.load_cycle(cycle_id, settings.sources, [outcome], [], [], started)
        store.finish_cycle(cycle_id, finished, {})


def _to_operator(mail: MailSink) -> list[str]:
    return [
        str(m["Subject"])
        for m in mail.messages()
        if "nadia.ouellet@laiterie-boreale.example" in str(m["To"])
    ]


def test_a_stopped_watch_is_told_once_and_its_return_once(
    write_config: ConfigWriter, mail_sink: MailSink
) -> None:
    config = write_config(sources=[SOURCE], smtp_port=mail_sink.port, extra=OPERATOR)
    now = datetime.now(UTC)
    _cycle(config, "c1", now - timedelta(hours=3), "ok")

    first = _watchdog(config)
    assert first.returncode == 1, first.stderr
    assert "WATCH STOPPED" in first.stdout and "c1" in first.stdout
    [subject] = _to_operator(mail_sink)
    assert subject.startswith("[Vigie][VEILLE ARRÊTÉE] Aucun cycle de veille depuis 3 h")

    # Cron runs it again: still stopped, nothing sent twice.
    again = _watchdog(config)
    assert again.returncode == 1
    assert "The operators were told at" in again.stdout
    assert "Sent:" not in again.stdout
    assert len(_to_operator(mail_sink)) == 1

    # A recent cycle in which every source failed is not a watch.
    _cycle(config, "c2", now - timedelta(minutes=5), "error")
    assert _watchdog(config).returncode == 1
    assert len(_to_operator(mail_sink)) == 1

    # The watch is back (an unchanged feed answering 304 counts): told once.
    _cycle(config, "c3", now - timedelta(minutes=2), "not_modified")
    back = _watchdog(config)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "Watch running" in back.stdout and "c3" in back.stdout
    assert _to_operator(mail_sink)[-1] == "[Vigie] La veille a repris"
    assert _watchdog(config).returncode == 0
    assert len(_to_operator(mail_sink)) == 2


def test_a_notice_smtp_refused_waits_in_the_outbox_for_the_next_run(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = write_config(sources=[SOURCE], smtp_port=free_port(), extra=OPERATOR, language="en")
    _cycle(config, "c1", datetime.now(UTC) - timedelta(hours=2), "ok")

    down = _watchdog(config)  # nothing listens on that SMTP port
    assert down.returncode == 1
    assert "Not sent now, kept in the outbox: watchdog.stopped.c1" in down.stdout
    assert "The operators are not told yet: watchdog.stopped.c1 failed 1 time(s)" in down.stdout

    # The stop notice is critical mail: tried again at the next delivery, with no back-off.
    with MailSink(tmp_path / "inbox") as mail:
        write_config(sources=[SOURCE], smtp_port=mail.port, extra=OPERATOR, language="en")
        up = _watchdog(config)
        assert up.returncode == 1
        assert "Sent: watchdog.stopped.c1" in up.stdout
        assert "The operators were told at" in up.stdout
        [subject] = _to_operator(mail)
        assert subject.startswith("[Vigie][WATCH STOPPED] No watch cycle for 2 h")


def test_a_watch_that_never_ran_is_one_clear_line(write_config: ConfigWriter) -> None:
    config = write_config(sources=[SOURCE], smtp_port=free_port(), extra=OPERATOR)
    result = _watchdog(config)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("vigie: WATCH NOT STARTED")
    assert "Traceback" not in result.stderr


def test_the_automation_without_a_prefect_server_is_one_clear_line(
    write_config: ConfigWriter,
) -> None:
    config = write_config(sources=[SOURCE], smtp_port=free_port(), extra=OPERATOR)
    automation = ("--config", str(config), "watchdog", "--automation")
    unset = vigie_here(*automation, drop=prefect_api_vars(), cwd=config.parent)
    assert unset.returncode == 2
    assert unset.stderr.strip().splitlines()[-1].startswith("vigie: PREFECT_API_URL is not set")
    down = vigie_here(
        *automation,
        env={"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"},
        drop=prefect_api_vars(),
        cwd=config.parent,
    )
    assert down.returncode == 1
    assert "does not answer" in down.stderr.strip().splitlines()[-1]
    assert "Traceback" not in unset.stderr + down.stderr
