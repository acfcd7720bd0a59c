"""The summary of a watch cycle: per-step times and counts, as `vigie run --json` prints it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.alerts import AlertChanges
from tasks.detect import TopicAssessment
from tasks.validate import ExpectationCheck, ValidationOutcome
from vigie.models import QuarantinedMention, SourceOutcome


class StepClock:
    """Wall-clock time spent in each named step of a cycle."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}
        self._spans: dict[str, tuple[float, float]] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            t1 = time.monotonic()
            self.steps[name] = round(self.steps.get(name, 0.0) + t1 - t0, 4)
            first = self._spans.get(name, (t0, t1))[0]
            self._spans[name] = (first, t1)

    def between(self, first: str, last: str) -> float:
        """Seconds from the start of step `first` to the end of step `last` (0 if either is
        missing)."""
        if first not in self._spans or last not in self._spans:
            return 0.0
        return round(self._spans[last][1] - self._spans[first][0], 4)

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 4)


def cycle_summary(
    *,
    cycle_id: str,
    clock: StepClock,
    outcomes: Sequence[SourceOutcome],
    skipped: Mapping[str, str] | None = None,
    collected: int,
    matched: int,
    quarantined: int,
    new_mentions: int,
    alerts: AlertChanges,
    assessments: Sequence[TopicAssessment] = (),
    emails_sent: int,
    emails_failed: dict[str, str],
    failed_checks: Sequence[str] = (),
    quality_changes: Sequence[str] = (),
    health_changes: Sequence[str] = (),
    escalations: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON-ready summary of one cycle (`duration_s`, `steps`, counts, failed sources).

    `sources_skipped` names the sources not polled this cycle (poll interval or back-off) and
    why; they are not failures. `entries_parsed` counts entries read from the fetched documents
    before duplicates merged (`collected`) and watch queries kept (`matched`).
    """
    failed = {o.fetch.source: o.error or "error" for o in outcomes if o.status == "error"}
    skipped = dict(skipped or {})
    return {
        "cycle_id": cycle_id,
        # The collection's own time, as the benchmark compares it with other pollers: from the
        # first fetch to the end of loading. `total_s` is the whole cycle.
        "duration_s": clock.between("fetch", "load"),
        "total_s": clock.elapsed,
        "steps": dict(clock.steps),
        "sources": len(outcomes) + len(skipped),
        "sources_ok": sum(1 for o in outcomes if o.status == "ok"),
        "sources_not_modified": sum(1 for o in outcomes if o.status == "not_modified"),
        "sources_failed": failed,
        "sources_skipped": skipped,
        "entries_parsed": sum(o.items for o in outcomes),
        "collected": collected,
        "matched": matched,
        "quarantined": quarantined,
        "new_mentions": new_mentions,
        "alerts_opened": list(alerts.opened),
        "alerts_escalated": list(alerts.escalated),
        "alerts_updated": list(alerts.updated),
        "alerts_resolved": list(alerts.resolved),
        "topics": {
            a.signal.topic: {
                "mentions": a.signal.current,
                "volume_score": round(a.volume_score, 3),
                "severity": a.severity.score,
                "level": a.severity.level,
                "contributions": a.severity.contributions,
            }
            for a in assessments
        },
        "emails_sent": emails_sent,
        "emails_failed": dict(emails_failed),
        "failed_checks": list(failed_checks),
        "quality_changes": list(quality_changes),
        "health_changes": list(health_changes),
        "escalations": list(escalations),
    }


def _md_cell(value: object) -> str:
    # Names, titles and errors come from config or the network: keep them from breaking the
    # table or injecting markup (markdown links, images, HTML) into the Prefect UI.
    text = " ".join(str(value).split())[:200]
    for char in "\\`*_[]()<>|!#":
        text = text.replace(char, "\\" + char)
    return text


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
        "entries_parsed",
        "collected",
        "matched",
        "quarantined",
        "new_mentions",
        "emails_sent",
    ):
        lines.append(f"| {key} | {summary[key]} |")
    lines.append(f"| sources_skipped | {len(summary.get('sources_skipped') or {})} |")
    lines.append(f"| alerts_opened | {len(summary['alerts_opened'])} |")
    if summary["sources_failed"]:
        lines += ["", "## Failed sources", "", "| source | reason |", "|---|---|"]
        for source, reason in summary["sources_failed"].items():
            lines.append(f"| {_md_cell(source)} | {_md_cell(reason)} |")
    for title, key in (
        ("Failed checks", "failed_checks"),
        ("Source quality", "quality_changes"),
        ("Source health", "health_changes"),
        ("Escalations", "escalations"),
    ):
        if summary.get(key):
            lines += ["", f"## {title}", ""] + [f"- {_md_cell(item)}" for item in summary[key]]
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


def validation_rows(
    mention_checks: Sequence[ExpectationCheck], run_checks: Sequence[ExpectationCheck]
) -> list[dict[str, object]]:
    """One row per expectation of both suites, for the validation table artifact."""
    rows: list[dict[str, object]] = []
    for suite, checks in (("mentions", mention_checks), ("source_runs", run_checks)):
        for check in checks:
            rows.append(
                {
                    "suite": suite,
                    "expectation": check.expectation,
                    "column": check.column,
                    "result": "pass" if check.success else "FAIL",
                    "unexpected rows": check.unexpected,
                }
            )
    return rows


def quarantine_markdown(quarantined: Sequence[QuarantinedMention], limit: int = 50) -> str:
    """The quarantined rows of a batch and why; feed text is escaped for the Prefect UI."""
    if not quarantined:
        return "No mention was quarantined in this cycle."
    lines = [
        f"# Quarantined mentions ({len(quarantined)})",
        "",
        "| source | title | url | failed |",
        "|---|---|---|---|",
    ]
    for item in quarantined[:limit]:
        mention = item.mention
        lines.append(
            f"| {_md_cell(mention.source)} | {_md_cell(mention.title[:80])} | "
            f"{_md_cell(mention.url[:80])} | {_md_cell(', '.join(item.reasons))} |"
        )
    if len(quarantined) > limit:
        lines.append(f"\n… and {len(quarantined) - limit} more (table `quarantine`).")
    return "\n".join(lines)


@task(name="publish-validation", cache_policy=NO_CACHE)
def publish_validation_task(
    outcome: ValidationOutcome, run_checks: Sequence[ExpectationCheck]
) -> None:
    """Show each expectation's verdict and the quarantined rows in the Prefect UI."""
    create_table_artifact(
        key="validation",
        table=validation_rows(outcome.checks, run_checks),
        description="Great Expectations verdicts on this cycle's mentions and source runs",
    )
    create_markdown_artifact(
        key="quarantine",
        markdown=quarantine_markdown(outcome.quarantined),
        description="Mentions set apart by validation, with the expectations they failed",
    )
