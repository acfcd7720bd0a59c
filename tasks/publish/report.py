"""The summary of a watch cycle: per-step times and counts, as `vigie run --json` prints it,
and what the Prefect UI shows of it: the `watch-cycle-summary` markdown artifact, the
`top-stories` table, the validation verdicts and the quarantine (stable keys, so the latest of
each is found by key). Feed text is untrusted: it is escaped, bounded, and only http(s)
addresses become links."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.detect.breaking import StoryAssessment
from tasks.detect.volume import TopicAssessment
from tasks.enrich.validate import ExpectationCheck, ValidationOutcome
from tasks.notify.alerts import AlertChanges
from tasks.notify.emails import header_safe
from tasks.notify.rendering import LOCALES, catalogue
from tasks.publish.ui import publish_markdown, publish_table
from vigie.models import CycleSummary, QuarantinedMention, SourceOutcome
from warehouse.connection import open_warehouse
from warehouse.store import Store

# The top stories of a cycle: those with mentions published in the day before it.
TOP_STORIES_WINDOW = timedelta(hours=24)
TOP_STORIES_LIMIT = 10


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
    channels_sent: int = 0,
    channels_failed: Mapping[str, str] | None = None,
    failed_checks: Sequence[str] = (),
    quality_changes: Sequence[str] = (),
    health_changes: Sequence[str] = (),
    escalations: Sequence[str] = (),
    breaking: Sequence[StoryAssessment] = (),
) -> CycleSummary:
    """The JSON-ready summary of one cycle (`duration_s`, `steps`, counts, failed sources).

    `sources_skipped` names the sources not polled this cycle (poll interval or back-off) and
    why; they are not failures, nor are `sources_deferred` (the fetch step had no time left
    for them; they go first next cycle). `entries_parsed` counts entries read from the fetched
    documents before duplicates merged (`collected`) and watch queries kept (`matched`).
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
        "sources_deferred": {
            o.fetch.source: o.error or "deferred" for o in outcomes if o.status == "deferred"
        },
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
        # Stories spreading fast (tasks/detect/breaking.py), alerting or not.
        "breaking_stories": [
            {
                "story_id": b.story_id,
                "topic": b.topic,
                "title": b.title,
                "sources": b.sources,
                "needed": b.needed,
                "level": b.severity.level,
            }
            for b in breaking
            if b.breaking
        ],
        "emails_sent": emails_sent,
        "emails_failed": dict(emails_failed),
        "channels_sent": channels_sent,
        "channels_failed": dict(channels_failed or {}),
        "failed_checks": list(failed_checks),
        "quality_changes": list(quality_changes),
        "health_changes": list(health_changes),
        "escalations": list(escalations),
    }


# Every ASCII punctuation mark but ":" is escaped in untrusted text: the UI's renderer (marked)
# then forms no link, image, autolink (`www.`, `a@b.c`, `http://`), HTML, emphasis or table
# cell from it. A lone ":" forms nothing ("javascript:" stays inert text).
_MD_SPECIAL = re.compile(r"[!-/;-@\[-`{-~]")
MAX_CELL_CHARS = 200
MAX_URL_CHARS = 2000
# Characters kept as they are in a link's address; everything else is percent-encoded, so the
# address cannot end the markdown link early (spaces, parentheses, brackets, quotes, "<>").
_URL_SAFE = "/:?#&=%+@!$,;~*-._"


def md_text(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """Untrusted text (a title, a source name, an error) as inert markdown: one line, control
    and bidi characters out, at most `limit` characters, punctuation escaped."""
    return _MD_SPECIAL.sub(r"\\\g<0>", header_safe(str(value), limit))


# Prefect's renderer shows backslash escapes inside a link's text as they are, so a label is
# made inert by swapping the characters that could end the link, open a tag, an emphasis, a
# code span or a table cell for look-alikes instead.
_LABEL_LOOKALIKES = str.maketrans(
    {"[": "(", "]": ")", "\\": "/", "`": "'", "<": "‹", ">": "›", "*": "∗", "_": " ", "|": "¦"}
)


def md_label(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """Untrusted text as a link's label: one bounded line, readable, inert, no backslashes."""
    return header_safe(str(value), limit).translate(_LABEL_LOOKALIKES)


def safe_url(url: object) -> str | None:
    """`url` fit for a markdown link, or None: only http(s) addresses with a host, bounded,
    control characters and markdown-breaking characters percent-encoded."""
    text = "".join(ch for ch in str(url) if unicodedata.category(ch) not in {"Cc", "Cf"}).strip()
    if not text or len(text) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return None
    return quote(text, safe=_URL_SAFE)


def md_link(text: object, url: object, limit: int = MAX_CELL_CHARS) -> str:
    """A markdown link to `url` showing `text`, or the text alone when `url` is not http(s)."""
    href = safe_url(url)
    if not href:
        return md_text(text, limit)
    label = md_label(text, limit)
    return f"[{label}]({href})" if label.strip() else md_text(text, limit)


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return md_text(value or "")


# The summary's texts, from the one catalogue (tasks/notify/catalogue, `[cycle_summary]`).
SUMMARY_TEXTS: dict[str, dict[str, str]] = {
    language: {key: str(text) for key, text in catalogue(language)["cycle_summary"].items()}
    for language in LOCALES
}


def _word(language: str, key: str) -> str:
    """The UI text `key` in `language` (English, then the key itself, when missing)."""
    return SUMMARY_TEXTS.get(language, {}).get(key) or SUMMARY_TEXTS["en"].get(key) or key


def _seconds(value: float, language: str) -> str:
    text = f"{value:.2f}"
    return text.replace(".", ",") if language == "fr" else text


def summary_markdown(
    summary: CycleSummary,
    stories: Sequence[Mapping[str, Any]] = (),
    *,
    language: str = "en",
    alerts: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The cycle's summary for the Prefect UI, in `language`: counts, failed sources and why,
    alerts opened or escalated (level and topic, from `alerts`: their details by id), emails,
    time per step, and the top stories with their links."""
    failed = summary["sources_failed"]
    escalated = [*summary["alerts_escalated"], *summary.get("escalations", [])]
    alerts = alerts or {}

    def word(key: str) -> str:
        return _word(language, key)

    lines = [
        f"# {word('title').format(cycle_id=md_text(summary['cycle_id']))}",
        "",
        word("what"),
        "|---|---|",
    ]
    for label, value in (
        ("sources", summary["sources"]),
        ("sources ok", summary["sources_ok"]),
        ("sources not modified", summary["sources_not_modified"]),
        ("sources failed", len(failed)),
        ("sources skipped", len(summary.get("sources_skipped") or {})),
        ("sources deferred", len(summary.get("sources_deferred") or {})),
        ("entries parsed", summary["entries_parsed"]),
        ("collected", summary["collected"]),
        ("matched", summary["matched"]),
        ("new mentions", summary["new_mentions"]),
        ("quarantined rows", summary["quarantined"]),
        ("alerts opened", len(summary["alerts_opened"])),
        ("alerts escalated", len(escalated)),
        ("emails sent", summary["emails_sent"]),
        ("emails failed", len(summary.get("emails_failed") or {})),
        ("channel messages sent", summary.get("channels_sent", 0)),
        ("channel messages failed", len(summary.get("channels_failed") or {})),
    ):
        lines.append(f"| {word(label)} | {value} |")
    if failed:
        lines += ["", f"## {word('Failed sources')}", "", word("source reason"), "|---|---|"]
        lines += [f"| {md_text(s)} | {md_text(r)} |" for s, r in failed.items()]
    if summary["alerts_opened"] or escalated:
        lines += ["", f"## {word('Alerts')}", ""]
        for verb, ids in (("opened", summary["alerts_opened"]), ("escalated", escalated)):
            for alert_id in ids:
                alert = alerts.get(alert_id)
                if alert is None:  # a cell escalation ("al-...: level 1 -> 2"), or no details
                    lines.append(f"- {word(verb)}: {md_text(alert_id)}")
                    continue
                level = str(alert.get("level") or "")
                lines.append(
                    word("alert line").format(
                        level=f"**{md_text(word(level))}**",
                        verb=word(verb),
                        topic=md_text(alert.get("topic") or ""),
                        alert_id=md_text(alert_id),
                    )
                )
    if summary.get("topics"):
        lines += ["", f"## {word('Topics')}", "", word("topics header"), "|---|---|---|---|"]
        lines += [
            f"| {md_text(topic)} | {t['mentions']} | {t['severity']:.0f} | "
            f"{md_text(word(str(t['level'])))} |"
            for topic, t in summary["topics"].items()
        ]
    if stories:
        lines += ["", f"## {word('Top stories')}", "", word("stories header"), "|---|---|---|---|"]
        lines += [
            f"| {md_link(s['title'], s['url'], 120)} | {md_text(s['source'], 80)} | "
            f"{s['tier']} | {s['mentions']} |"
            for s in stories
        ]
    for title, reasons in (
        ("Emails not sent", summary.get("emails_failed")),
        ("Channel messages not sent", summary.get("channels_failed")),
        ("Skipped sources", summary.get("sources_skipped")),
        (
            "Deferred sources (the fetch step ran out of time; first next cycle)",
            summary.get("sources_deferred"),
        ),
    ):
        if reasons:
            lines += ["", f"## {word(title)}", ""]
            lines += [f"- {md_text(k)}: {md_text(v)}" for k, v in reasons.items()]
    for title, items in (
        ("Failed checks", summary.get("failed_checks")),
        ("Source quality", summary.get("quality_changes")),
        ("Source health", summary.get("health_changes")),
    ):
        if items:
            lines += ["", f"## {word(title)}", ""] + [f"- {md_text(item)}" for item in items]
    lines += ["", f"## {word('Time per step')}", "", word("steps header"), "|---|---|"]
    lines += [
        f"| {md_text(step)} | {_seconds(seconds, language)} |"
        for step, seconds in summary["steps"].items()
    ]
    lines += [
        "",
        word("footer").format(
            collection=_seconds(summary["duration_s"], language),
            total=_seconds(summary.get("total_s", summary["duration_s"]), language),
        ),
    ]
    return "\n".join(lines)


STORY_COLUMNS = {
    "fr": ("article", "sujet", "média", "rang", "mentions", "sources", "vu d’abord"),
    "en": ("story", "topic", "outlet", "tier", "mentions", "sources", "first seen"),
}


def top_story_rows(
    stories: Sequence[Mapping[str, Any]], language: str = "en"
) -> list[dict[str, object]]:
    """One row per story for the `top-stories` table artifact, columns in `language`; the
    title links to the story. The UI renders text cells as markdown, so every text is escaped
    and the title is a link only for an http(s) address."""
    title, topic, outlet, tier, mentions, sources, first = STORY_COLUMNS.get(
        language, STORY_COLUMNS["en"]
    )
    rows: list[dict[str, object]] = []
    for story in stories:
        rows.append(
            {
                title: md_link(story.get("title") or "", story.get("url") or "", 160),
                topic: md_text(", ".join(story.get("topics") or []), 80),
                outlet: md_text(story.get("source") or "", 80),
                tier: story.get("tier"),
                mentions: story.get("mentions"),
                sources: story.get("sources"),
                first: _when(story.get("first_published_at")),
            }
        )
    return rows


@task(name="read-top-stories", cache_policy=NO_CACHE)
def read_top_stories_task(
    path: Path, now: datetime, tolerance: timedelta = timedelta(0)
) -> list[dict[str, Any]]:
    """The top stories published in the day before `now` (the cycle's view of the news)."""
    with open_warehouse(path) as con:
        return Store(con).top_stories(
            start=now - TOP_STORIES_WINDOW, end=now + tolerance, limit=TOP_STORIES_LIMIT
        )


DESCRIPTIONS = {
    "fr": {
        "watch-cycle-summary": "Ce que le dernier cycle de veille a collecté, chargé et envoyé",
        "top-stories": "Articles principaux des dernières 24 h : grands médias, puis portée",
        "validation": "Verdicts de Great Expectations sur les mentions et les collectes du cycle",
        "quarantine": "Mentions mises à l’écart par la validation, et pourquoi",
    },
    "en": {
        "watch-cycle-summary": "What the last watch cycle collected, loaded and sent",
        "top-stories": "Top stories of the last 24 hours: major outlets first, then reach",
        "validation": "Great Expectations verdicts on this cycle's mentions and source runs",
        "quarantine": "Mentions set apart by validation, with the expectations they failed",
    },
}


def publish_cycle_artifacts(
    summary: CycleSummary,
    stories: Sequence[Mapping[str, Any]],
    outcome: ValidationOutcome,
    run_checks: Sequence[ExpectationCheck],
    *,
    language: str,
    alerts: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Publish the cycle's summary, top stories, validation verdicts and quarantine in
    `language`. Called from the flow's body (not from a task), so that they belong to the flow
    run and show on its page. Best effort: an API gone skips them with one warning."""
    described = DESCRIPTIONS.get(language, DESCRIPTIONS["en"])
    publish_markdown(
        key="watch-cycle-summary",
        markdown=summary_markdown(summary, stories, language=language, alerts=alerts),
        description=described["watch-cycle-summary"],
    )
    publish_table(
        key="top-stories",
        table=top_story_rows(stories, language),
        description=described["top-stories"],
    )
    publish_table(
        key="validation",
        table=validation_rows(outcome.checks, run_checks),
        description=described["validation"],
    )
    publish_markdown(
        key="quarantine",
        markdown=quarantine_markdown(outcome.quarantined),
        description=described["quarantine"],
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
            f"| {md_text(mention.source)} | {md_text(mention.title, 80)} | "
            f"{md_text(mention.url, 80)} | {md_text(', '.join(item.reasons))} |"
        )
    if len(quarantined) > limit:
        lines.append(f"\n… and {len(quarantined) - limit} more (table `quarantine`).")
    return "\n".join(lines)
