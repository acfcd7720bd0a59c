"""A damaged warehouse, as the `vigie` commands meet it: a real DuckDB file with cycles in it,
backed up by the maintenance's rotation, then truncated. Every command says in one line which file
and what to do; `vigie watchdog` emails the operators through a real SMTP server (aiosmtpd)
without the warehouse, once per incident; `vigie db restore` mends it and keeps the damaged file.
The commands run in this process: what they meet is the file, which a process of its own would
meet the same way."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.commands import prefect_api_vars, vigie_here
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink
from vigie.models import FetchResult, SourceOutcome
from vigie.settings import load_settings
from warehouse.backup import rotate_backups
from warehouse.connection import open_warehouse
from warehouse.store import Store

OPERATOR = """
[[cell.members]]
name = "Nadia Ouellet"
email = "nadia.ouellet@laiterie-boreale.example"
role = "operator"
level = 1
"""
SOURCE = {"name": "Le Quotidien", "url": "http://127.0.0.1:9/rss.xml"}


def _vigie(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return vigie_here(
        "--config",
        str(config),
        *args,
        env={"VIGIE_SMTP_PASSWORD": ""},
        drop=prefect_api_vars(),
        cwd=config.parent,
    )


def _fill(config: Path, cycles: int) -> Path:
    """A warehouse with `cycles` completed cycles of one answering source, checkpointed."""
    settings = load_settings(config)
    now = datetime.now(UTC)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        for number in range(cycles):
            started = now - timedelta(minutes=10 * (cycles - number))
            fetch = FetchResult(
                source=SOURCE["name"],
                url=SOURCE["url"],
                status="ok",
                started_at=started,
                duration_s=0.2,
            )
            store.begin_cycle(f"c{number}", started, None)
            outcome = SourceOutcome(fetch, "ok")
            store.load_cycle(f"c{number}", settings.sources, [outcome], [], [], started)
            store.finish_cycle(f"c{number}", started + timedelta(minutes=1), {})
        con.execute("CHECKPOINT")
    return settings.warehouse_path


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _one_clear_line(result: subprocess.CompletedProcess[str], path: Path, backup: Path) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "IOException" not in output, output[-3000:]
    [line] = [line for line in output.splitlines() if "damaged" in line]
    assert str(path) in line and f"vigie db restore {backup}" in line, line


def test_every_command_names_the_damaged_file_and_the_restore_and_the_watchdog_tells_once(
    write_config: ConfigWriter, mail_sink: MailSink
) -> None:
    config = write_config(sources=[SOURCE], smtp_port=mail_sink.port, extra=OPERATOR)
    path = _fill(config, 3)
    backup, _ = rotate_backups(path, keep=3, now=datetime.now(UTC))
    _truncate(path)

    for command in (["run", "--once"], ["status"], ["db", "info"], ["db", "check"]):
        _one_clear_line(_vigie(config, *command), path, backup)

    first = _vigie(config, "watchdog")
    _one_clear_line(first, path, backup)
    assert "Sent: watchdog.unreadable." in first.stdout, first.stdout
    [notice] = mail_sink.messages()
    assert "nadia.ouellet@laiterie-boreale.example" in str(notice["To"])
    assert path.name in str(notice["Subject"])
    body = notice.get_body(preferencelist=("plain",))
    assert body is not None
    text = " ".join(body.get_content().split())
    assert str(path) in text and f"vigie db restore {backup}" in text, text

    # Cron runs it again and again during the incident: nothing is sent twice.
    again = _vigie(config, "watchdog")
    assert "The operators were told at" in again.stdout, again.stdout + again.stderr
    assert len(mail_sink.messages()) == 1

    # The restore mends it, keeping the damaged file; the whole file reads; the incident ends.
    restored = _vigie(config, "db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert path.with_name(path.name + ".damaged").exists()
    checked = _vigie(config, "db", "check")
    assert checked.returncode == 0 and "readable whole" in checked.stdout, checked.stderr
    back = _vigie(config, "watchdog")
    assert "reads again" in back.stdout, back.stdout + back.stderr
    assert "Traceback" not in back.stderr


def test_a_watchdog_that_cannot_reach_smtp_tells_of_the_damage_at_its_next_run(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    with MailSink(tmp_path / "first") as down:
        port = down.port
    config = write_config(sources=[SOURCE], smtp_port=port, extra=OPERATOR)
    path = _fill(config, 1)
    _truncate(path)
    failed = _vigie(config, "watchdog")
    assert "The operators are not told yet" in failed.stdout, failed.stdout + failed.stderr
    with MailSink(tmp_path / "inbox") as mail:
        config.write_text(
            config.read_text(encoding="utf-8").replace(f"port = {port}", f"port = {mail.port}"),
            encoding="utf-8",
        )
        sent = _vigie(config, "watchdog")
        assert "Sent: watchdog.unreadable." in sent.stdout, sent.stdout + sent.stderr
        assert _vigie(config, "watchdog").returncode == 1
        assert len(mail.messages()) == 1
        # Without a backup yet, the line still says what to run.
        assert "vigie db restore FILE" in sent.stdout
