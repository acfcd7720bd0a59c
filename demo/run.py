"""`vigie demo`: the whole chain on the bundled scenario, on this machine only.

It starts a feed server and an SMTP server on 127.0.0.1, writes a configuration for them in a
working folder, and runs three watch cycles as Prefect flows: calm (the blog that moved is
reported to the cell's operators once), burst (an alert opens and its email arrives), and the
burst again (nothing new is loaded or sent: the cycle is idempotent).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from vigie import scenario
from vigie.localservers import FeedServer, MailSink
from vigie.models import CycleSummary

Printer = Callable[[str], None]


def _cycle_line(label: str, summary: CycleSummary) -> str:
    failed = summary["sources_failed"]
    failures = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
    return (
        f"  {label:<28} {summary['duration_s']:5.1f} s  sources ok {summary['sources_ok']}"
        f" (unchanged {summary['sources_not_modified']}, failed {len(failed)})"
        f"  matched {summary['matched']}  new {summary['new_mentions']}"
        f"  alerts {len(summary['alerts_opened'])}  emails {summary['emails_sent']}"
        + (f"\n  {'':<28} failed: {failures}" if failures else "")
    )


def run_demo(workdir: Path, *, out: Printer = print) -> int:
    """Run the scenario in `workdir` (emptied first); return the process exit code."""
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    inbox = workdir / "inbox"
    if not os.environ.get("PREFECT_API_URL"):
        # No server configured: Prefect runs a temporary one; keep its files in the demo folder.
        os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect-home"))
    # Prefect logs every task run; the demo prints its own summary of each cycle instead.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.watch_cycle import watch_cycle
    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    anchor = datetime.now(UTC)
    with FeedServer() as feeds, MailSink(inbox) as smtp:
        urls = scenario.publish(feeds, "calm", anchor)
        config = workdir / "vigie.toml"
        config.write_text(
            scenario.config_toml(
                feed_server=feeds, smtp_port=smtp.port, warehouse="vigie.duckdb", urls=urls
            ),
            encoding="utf-8",
        )
        out(
            f"Vigie demo: {scenario.ORGANISATION}, feeds on {feeds.url('/')}, "
            f"SMTP on 127.0.0.1:{smtp.port}"
        )
        out("Running watch cycles (Prefect flows):")
        calm = watch_cycle(str(config))
        out(_cycle_line("1. calm (two quiet days)", calm))
        scenario.publish(feeds, "burst", anchor)
        burst = watch_cycle(str(config))
        out(_cycle_line("2. burst (a recall story)", burst))
        again = watch_cycle(str(config))
        out(_cycle_line("3. same feeds again", again))
        received = sorted(inbox.glob("*.eml"))
        messages = smtp.messages()

    with open_warehouse(workdir / "vigie.duckdb") as con:
        store = Store(con)
        counts = store.counts()
        alerts = store.open_alerts()
        refused = con.execute("SELECT source, reasons, record->>'url' FROM quarantine").fetchall()
    out("")
    out(
        f"Mentions in the warehouse: {counts['mentions']} ({counts['stories']} stories), "
        f"source runs: {counts['source_runs']}, quarantined: {len(refused)}"
    )
    for source, reasons, url in refused:
        out(f"  quarantined from {source}: {url[:60]} ({', '.join(reasons)})")
    for alert_id, topic, level, status, _opened_at, in_window, reason in alerts:
        out(
            f"Alert {alert_id}: topic '{topic}', level {level.upper()}, {status}, "
            f"{in_window} mentions in the window"
        )
        out(f"  why: {reason}")
    for message in messages:
        out(f"Email to {message['To']}: {message['Subject']}")
    out(f"Received emails ({len(received)}): {inbox}")
    for path in received:
        out(f"  {path}")
    out(f"DuckDB warehouse: {workdir / 'vigie.duckdb'}")
    out(f"Configuration used: {config}")
    summary_path = workdir / "cycles.json"
    summary_path.write_text(json.dumps([calm, burst, again], indent=2), encoding="utf-8")
    # Two emails in all: the moved blog's notice, then the alert; the rerun sends nothing.
    ok = (
        bool(alerts)
        and len(received) == 2
        and again["new_mentions"] == 0
        and again["emails_sent"] == 0
    )
    if not ok:
        out("The demo did not go as expected (see above).")
    return 0 if ok else 1
