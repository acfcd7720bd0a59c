"""What the Prefect UI says of the crisis, in the organisation's language: the named final state
of a watch cycle (its name, message and tags give the level and the topic of what it opened or
escalated, and say when its emails failed) and the `situation` artifact, the state of things now
(open alerts, their level, who took charge, the sources down), which every cycle replaces.

A cycle whose emails failed ends Failed (named "Emails en échec" / "Emails failed"): the data is
loaded and the outbox tries again at the next delivery, but nobody has been told, and a Failed run
is what the dashboard counts and what Prefect's own automations on failed runs already watch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from tasks.notify.emails import failure_words
from tasks.notify.rendering import LOCALES, Texts, catalogue
from tasks.publish.report import md_text
from tasks.publish.ui import publish_markdown
from vigie.models import CycleSummary
from warehouse.connection import open_warehouse
from warehouse.store import Store

SITUATION_KEY = "situation"
# The most severe first: a cycle that opens a crisis and an alert is named for the crisis.
LEVEL_RANK = {"veille": 0, "vigilance": 1, "alerte": 2, "crise": 3}

# The texts, from the one catalogue (tasks/notify/catalogue, `[situation]`).
TEXTS: dict[str, dict[str, str]] = {
    language: {key: str(text) for key, text in catalogue(language)["situation"].items()}
    for language in LOCALES
}


def texts(language: str) -> dict[str, str]:
    return TEXTS.get(language, TEXTS["en"])


def _plurals(language: str) -> Texts:
    """The catalogue's counts, with the language's plural forms ("1 email envoyé")."""
    return Texts(language if language in TEXTS else "en")


@dataclass(frozen=True)
class CycleVerdict:
    """How a watch cycle ends in the Prefect UI: `name` None is a plain Completed."""

    name: str | None
    message: str | None
    tags: list[str] = field(default_factory=list)
    failed: bool = False


def _tag(text: object) -> str:
    return " ".join(str(text).split())[:100]


def cycle_verdict(
    summary: CycleSummary, alerts: Mapping[str, Mapping[str, Any]], language: str
) -> CycleVerdict:
    """The final state of a cycle: named for the most severe level among the alerts it opened
    or escalated (`alerts`: their details by id, as `Store.alert_details` gives them), with a
    message naming each level and topic and tags `level:<level>` and `topic:<topic>`
    (language-neutral, for filters and automations); Failed, and named so, when emails failed.
    """
    words = texts(language)
    lines: list[str] = []
    tags: list[str] = []
    top: str | None = None
    for kind, ids in (
        ("opened", summary["alerts_opened"]),
        ("escalated", summary["alerts_escalated"]),
    ):
        for alert_id in ids:
            alert = alerts.get(alert_id)
            if alert is None:
                continue
            level = str(alert.get("level") or "")
            topic = str(alert.get("topic") or "")
            if top is None or LEVEL_RANK.get(level, -1) > LEVEL_RANK.get(top, -1):
                top = level
            lines.append(
                words[kind].format(
                    level=words.get(level, level.capitalize()), topic=topic, alert_id=alert_id
                )
            )
            tags += [_tag(f"level:{level}"), _tag(f"topic:{topic}")]
    lines += [words["paged"].format(detail=detail) for detail in summary.get("escalations", [])]
    failed = dict(summary.get("emails_failed") or {})
    name = words.get(top, top.capitalize()) if top else None
    if failed:
        reason = " ".join(next(iter(failed.values())).split())[:200]
        lines.append(_plurals(language).plural("counts.emails_unsent", len(failed), reason=reason))
        tags.append("emails-failed")
        failed_name = words["emails_failed"]
        separator = " : " if language == "fr" else ": "
        name = f"{name}{separator}{failed_name.lower()}" if name else failed_name
    return CycleVerdict(
        name=name,
        message="; ".join(lines) or None,
        tags=list(dict.fromkeys(tags)),
        failed=bool(failed),
    )


def final_state(verdict: CycleVerdict, summary: CycleSummary) -> State[CycleSummary]:
    """The state a watch cycle returns: Prefect makes it the run's final state, and the flow's
    caller gets `summary` as its result."""
    if verdict.failed:
        return Failed(name=verdict.name or "Failed", message=verdict.message, data=summary)
    if verdict.name is None:
        return Completed(message=verdict.message, data=summary)
    return Completed(name=verdict.name, message=verdict.message, data=summary)


def cycle_result(state: State[Any]) -> CycleSummary:
    """The summary a finished watch cycle's state holds, Failed for its emails included; a
    cycle that failed or crashed on an error raises that error, as calling the flow would."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, dict) and "cycle_id" in result:
        return cast(CycleSummary, result)
    state.result()  # raises the run's own error
    raise TypeError(f"the watch cycle ended {state.name} without a summary")


@dataclass(frozen=True)
class Situation:
    """The state of things after a cycle: alerts not resolved (with who took charge) and the
    sources whose health is not ok, as the warehouse holds them."""

    alerts: list[dict[str, Any]]
    sources_down: list[dict[str, Any]]


def read_situation(store: Store) -> Situation:
    """Alerts not resolved and sources down, from the warehouse (drills left out)."""
    down = [
        {"source": row[0], "state": row[7], "since": row[8], "error": row[5]}
        for row in store.source_health()
        if row[7] != "ok"
    ]
    return Situation(alerts=store.situation_alerts(), sources_down=down)


@task(name="read-situation", cache_policy=NO_CACHE)
def read_situation_task(
    path: Path, alert_ids: Sequence[str]
) -> tuple[Situation, dict[str, dict[str, Any]]]:
    """The situation now, and the details (level, topic) of the alerts `alert_ids`."""
    with open_warehouse(path) as con:
        store = Store(con)
        return read_situation(store), store.alert_details(list(alert_ids))


def _why(source: Mapping[str, Any], language: str) -> str:
    """Why a source is down, in the organisation's language (the recorded error is English
    and technical); nothing when its last collection did not fail (a silent source)."""
    error = source.get("error")
    return failure_words(str(error), language) if error else ""


def _local(value: object, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(zone):%Y-%m-%d %H:%M}"
    return ""


def situation_markdown(
    situation: Situation,
    *,
    now: datetime,
    language: str,
    timezone: str,
    summary: CycleSummary | None = None,
) -> str:
    """The `situation` artifact: open alerts (level, topic, since when, mentions, who took
    charge), then the sources down, in the organisation's language and local time. Names
    from feeds and people are escaped as untrusted text."""
    words = texts(language)
    zone = ZoneInfo(timezone)
    when = f"{now.astimezone(zone):%Y-%m-%d %H:%M} ({md_text(timezone)})"
    lines = [
        f"# {words['situation_title'].format(when=when)}",
        "",
        f"## {words['open_alerts']}",
        "",
    ]
    if situation.alerts:
        lines += [words["alert_header"], "|---|---|---|---|---|"]
        ranked = sorted(situation.alerts, key=lambda a: -LEVEL_RANK.get(str(a.get("level")), -1))
        for alert in ranked:
            level = str(alert.get("level") or "")
            taken = (
                words["taken"].format(
                    by=md_text(alert["taken_by"], 120), when=_local(alert.get("taken_at"), zone)
                )
                if alert.get("taken_by")
                else words["nobody"]
            )
            shown = md_text(words.get(level, level)).upper()
            lines.append(
                f"| **{shown}** | {md_text(alert.get('topic'))} | "
                f"{_local(alert.get('opened_at'), zone)} | {alert.get('mentions') or 0} | {taken} |"
            )
    else:
        lines.append(words["no_open_alert"])
    lines += ["", f"## {words['sources_down']}", ""]
    if situation.sources_down:
        lines += [words["source_header"], "|---|---|---|---|"]
        for source in situation.sources_down:
            state = str(source.get("state") or "")
            lines.append(
                f"| {md_text(source.get('source'))} | {md_text(words.get(state, state))} | "
                f"{_local(source.get('since'), zone)} | {md_text(_why(source, language))} |"
            )
    else:
        lines.append(words["no_source_down"])
    if summary is not None:
        lines += [
            "",
            words["last_cycle"].format(
                cycle_id=md_text(summary["cycle_id"]),
                sent=_plurals(language).plural("counts.emails_sent", summary["emails_sent"]),
                failed=len(summary.get("emails_failed") or {}),
            ),
        ]
    return "\n".join(lines)


def publish_situation(
    situation: Situation,
    *,
    now: datetime,
    language: str,
    timezone: str,
    summary: CycleSummary | None = None,
) -> bool:
    """Replace the `situation` artifact (called from the flow's body: it belongs to the run)."""
    description = {
        "fr": "La situation maintenant : alertes ouvertes, prise en charge, sources en panne",
        "en": "The situation now: open alerts, who took charge, sources down",
    }
    return publish_markdown(
        key=SITUATION_KEY,
        markdown=situation_markdown(
            situation, now=now, language=language, timezone=timezone, summary=summary
        ),
        description=description.get(language, description["en"]),
    )
