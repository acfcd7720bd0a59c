"""The summary of a watch cycle: per-step times and counts, as `vigie run --json` prints it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from vigie.models import SourceOutcome


class StepClock:
    """Wall-clock time spent in each named step of a cycle."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.monotonic() - t0, 4)

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)


def cycle_summary(
    *,
    cycle_id: str,
    clock: StepClock,
    outcomes: Sequence[SourceOutcome],
    collected: int,
    matched: int,
    quarantined: int,
    new_mentions: int,
    alerts_opened: Sequence[str],
    emails_sent: int,
    emails_failed: dict[str, str],
) -> dict[str, Any]:
    """The JSON-ready summary of one cycle (`duration_s`, `steps`, counts, failed sources)."""
    failed = {o.fetch.source: o.error or "error" for o in outcomes if o.status == "error"}
    return {
        "cycle_id": cycle_id,
        "duration_s": clock.elapsed,
        "steps": dict(clock.steps),
        "sources": len(outcomes),
        "sources_ok": sum(1 for o in outcomes if o.status == "ok"),
        "sources_not_modified": sum(1 for o in outcomes if o.status == "not_modified"),
        "sources_failed": failed,
        "collected": collected,
        "matched": matched,
        "quarantined": quarantined,
        "new_mentions": new_mentions,
        "alerts_opened": list(alerts_opened),
        "emails_sent": emails_sent,
        "emails_failed": dict(emails_failed),
    }


def _md_cell(value: object) -> str:
    # Source names and errors are config or network text: keep them from breaking the table.
    return str(value).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")[:200]


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Watch cycle {summary['cycle_id']}",
        "",
        "| what | count |",
        "|---|---|",
    ]
    for key in (
        "sources",
        "sources_ok",
        "sources_not_modified",
        "collected",
        "matched",
        "quarantined",
        "new_mentions",
        "emails_sent",
    ):
        lines.append(f"| {key} | {summary[key]} |")
    lines.append(f"| alerts_opened | {len(summary['alerts_opened'])} |")
    if summary["sources_failed"]:
        lines += ["", "## Failed sources", "", "| source | reason |", "|---|---|"]
        for source, reason in summary["sources_failed"].items():
            lines.append(f"| {_md_cell(source)} | {_md_cell(reason)} |")
    lines += ["", f"Duration: {summary['duration_s']:.2f} s"]
    return "\n".join(lines)


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary_task(summary: dict[str, Any]) -> None:
    """Show the cycle's summary as a markdown artifact in the Prefect UI."""
    create_markdown_artifact(
        key="watch-cycle-summary",
        markdown=summary_markdown(summary),
        description="What the last watch cycle collected, loaded and sent",
    )
