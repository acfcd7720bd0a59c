"""Incident mode: tight-cadence watch cycles with extra queries, situation reports, a final report.

Plain functions, tested without Prefect; flows/incident.py wires them. An incident is a row of
`incidents` (warehouse/migrations/011_incidents.sql). Its extra queries become extra watch topics
("incident <name> 1", ...) of the watch cycles it runs. Situation report n covers what Vigie
collected since report n-1 (or since the start): volumes per topic, new stories, alert events,
open alerts and who took charge of them. The final report covers the whole incident. Both go to
the cell and the extra recipients through the outbox with deterministic ids
(`incident.<incident_id>.sitrep.<n>`, `incident.<incident_id>.report`), so a rerun never sends
twice; both are also markdown for the Prefect UI. Everything that came from the internet or from
parameters (titles, links, names, queries) is escaped, cleaned of control characters, bounded.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.load import send_pending
from tasks.notify.digest import PeriodAlert, TopStory, cell_recipients
from tasks.notify.emails import duty_entries, first_steps, header_safe
from tasks.notify.rendering import Texts, render, safe_href
from tasks.publish.report import md_link, md_text
from tasks.publish.ui import publish_markdown
from vigie.errors import QueryError, VigieError, WarehouseError
from vigie.models import OutboxMessage
from vigie.query import parse_query
from vigie.search import derived_search_query
from vigie.settings import SEARCH_KINDS, Secrets, Settings, Watch, address_problem
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore, StoredIncident

# The names a watch topic may have (vigie.settings.Watch); the incident's name is one too,
# because the example trigger passes an alert's topic as the name.
NAME_PATTERN = r"^[\w .'-]+$"
MAX_NAME = 80
MAX_QUERIES = 10
MAX_RECIPIENTS = 20
MAX_STORIES = 10
MAX_TIMELINE = 100
MAX_INTERVALS = 48
MAX_TITLE = 200
_NAME = re.compile(NAME_PATTERN)


def incident_topic(name: str, number: int) -> str:
    """The watch topic of the incident's `number`-th extra query (a valid watch name)."""
    return f"{('incident ' + name)[: MAX_NAME - 3].rstrip()} {number}"


def extra_watches(name: str, queries: Sequence[str]) -> tuple[Watch, ...]:
    """The incident's extra queries as watch topics, each parsed first.

    Raises:
        QueryError: a query is malformed; the message names it and gives the position.
        VigieError: the name is not usable as a topic name.
    """
    if not _NAME.match(name) or len(name) > MAX_NAME:
        raise VigieError(
            f"incident name {header_safe(name, 100)!r}: use at most {MAX_NAME} letters, "
            "digits, spaces, dots, dashes or apostrophes"
        )
    watches = []
    for number, query in enumerate(queries, start=1):
        try:
            parse_query(query)
        except QueryError as err:
            raise QueryError(
                f"extra query {number} {header_safe(query, 120)!r}: {err}",
                query=query,
                position=None,
            ) from err
        watches.append(Watch(name=incident_topic(name, number), query=query))
    return tuple(watches)


def with_extra_watches(settings: Settings, extra: Sequence[Watch]) -> Settings:
    """`settings` watching the `extra` topics too (names already watched are skipped); search
    sources whose query was derived from the watch queries search the extra terms as well."""
    known = {w.name for w in settings.watch}
    added = tuple(w for w in extra if w.name not in known)
    if not added:
        return settings
    before = derived_search_query(w.query for w in settings.watch)
    after = derived_search_query(w.query for w in (*settings.watch, *added))
    sources = tuple(
        s.model_copy(update={"query": after})
        if s.kind in SEARCH_KINDS and before and s.query == before
        else s
        for s in settings.sources
    )
    return settings.model_copy(update={"watch": (*settings.watch, *added), "sources": sources})


def check_recipients(addresses: Sequence[str]) -> tuple[str, ...]:
    """The extra recipients, each a valid address.

    Raises:
        VigieError: an address is not valid; the message names it.
    """
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise VigieError(
                f"extra recipient {header_safe(address, 120)!r}: {problem}; give a valid "
                "email address, or leave it out"
            )
    return tuple(addresses)


def incident_recipients(settings: Settings, extra: Sequence[str]) -> tuple[str, ...]:
    """The cell (as the digest picks it) then the extra recipients, once each."""
    seen: set[str] = set()
    found = []
    for address in (*cell_recipients(settings), *extra):
        if address.lower() not in seen:
            seen.add(address.lower())
            found.append(address)
    return tuple(found)


def incident_id_for(name: str, started_at: datetime, flow_run_id: str | None) -> str:
    """A stable id: a rerun of the same flow run finds its incident again."""
    seed = flow_run_id or f"{name}@{started_at.isoformat()}"
    digest = hashlib.sha256(f"{name}\n{seed}".encode()).hexdigest()[:10]
    return f"inc-{started_at:%Y%m%d%H%M}-{digest}"


def elapsed_label(elapsed: timedelta) -> str:
    """`H+2` on the hour, `H+1:30` between hours."""
    minutes = max(0, int(elapsed.total_seconds() // 60))
    hours, rest = divmod(minutes, 60)
    return f"H+{hours}" if rest == 0 else f"H+{hours}:{rest:02d}"


@dataclass(frozen=True, slots=True)
class IncidentPlan:
    """When the incident's cycles and reports are due, from its start and parameters."""

    started_at: datetime
    ends_at: datetime
    cadence: timedelta
    sitrep_every: timedelta

    @classmethod
    def of(
        cls,
        started_at: datetime,
        *,
        cadence_minutes: float,
        duration_hours: float,
        sitrep_every_minutes: float,
    ) -> IncidentPlan:
        return cls(
            started_at,
            started_at + timedelta(hours=duration_hours),
            timedelta(minutes=cadence_minutes),
            timedelta(minutes=sitrep_every_minutes),
        )

    def label(self, now: datetime) -> str:
        """`H+1:05`: the time since the start, as the cycles' run names give it."""
        return elapsed_label(now - self.started_at)

    def next_cycle(self, last_started: datetime, now: datetime) -> datetime:
        """When the next cycle starts: a cadence after the last one started, or now when that
        one overran (never a burst of cycles to catch up, even after a rerun)."""
        return max(last_started + self.cadence, now)

    def sitrep_due(self, now: datetime) -> int:
        """The number of the last situation report due at `now` (0: none yet)."""
        if now < self.started_at + self.sitrep_every:
            return 0
        return int((min(now, self.ends_at) - self.started_at) / self.sitrep_every)

    def sitrep_at(self, number: int) -> datetime:
        return self.started_at + self.sitrep_every * number

    def sitrep_label(self, number: int) -> str:
        return elapsed_label(self.sitrep_every * number)


def wait_until(
    moment: datetime,
    stop_requested: Callable[[], bool],
    *,
    poll_s: float = 5.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Sleep until `moment`, asking `stop_requested` every `poll_s`; True when asked to stop."""
    while True:
        if stop_requested():
            return True
        left = (moment - clock()).total_seconds()
        if left <= 0:
            return False
        sleep(min(left, poll_s))


@dataclass(frozen=True, slots=True)
class TopicCount:
    topic: str
    period: int
    total: int
    extra: bool


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: datetime
    alert_id: str
    kind: str
    topic: str
    level: str
    by: str | None


@dataclass(frozen=True, slots=True)
class Sitrep:
    incident_id: str
    name: str
    number: int
    label: str
    start: datetime
    end: datetime
    started_at: datetime
    topics: tuple[TopicCount, ...]
    stories: tuple[TopStory, ...]
    events: tuple[TimelineEvent, ...]
    open_alerts: tuple[PeriodAlert, ...]


@dataclass(frozen=True, slots=True)
class IncidentReport:
    incident_id: str
    name: str
    status: str
    started_at: datetime
    ended_at: datetime
    queries: tuple[str, ...]
    stop_requested_by: str | None
    sitreps: int
    topics: tuple[TopicCount, ...]
    intervals: tuple[tuple[str, tuple[int, ...]], ...]
    stories: tuple[TopStory, ...]
    events: tuple[TimelineEvent, ...]
    open_alerts: tuple[PeriodAlert, ...]


def _topics(settings: Settings, extra: Sequence[str]) -> list[str]:
    names = [w.name for w in settings.watch]
    return names + [t for t in extra if t not in names]


def _counts(
    store: IncidentStore,
    topics: Sequence[str],
    extra: Sequence[str],
    *,
    start: datetime,
    end: datetime,
    since: datetime,
) -> tuple[TopicCount, ...]:
    period = store.collected_topic_counts(topics, start=start, end=end)
    total = store.collected_topic_counts(topics, start=since, end=end)
    return tuple(TopicCount(t, period[t], total[t], t in extra) for t in topics)


def _stories(store: IncidentStore, start: datetime, end: datetime) -> tuple[TopStory, ...]:
    return tuple(
        TopStory(**{**row, "topics": tuple(row["topics"] or ())})
        for row in store.collected_stories(start=start, end=end, limit=MAX_STORIES)
    )


def _events(store: IncidentStore, start: datetime, end: datetime) -> tuple[TimelineEvent, ...]:
    return tuple(
        TimelineEvent(**row) for row in store.alert_timeline(start=start, end=end)[:MAX_TIMELINE]
    )


def _open_alerts(store: IncidentStore, at: datetime) -> tuple[PeriodAlert, ...]:
    return tuple(
        PeriodAlert(**row)
        for row in store.period_alerts(start=at, end=at)
        if row["status"] != "resolved"
    )[:MAX_TIMELINE]


def build_sitrep(
    store: IncidentStore,
    settings: Settings,
    incident: StoredIncident,
    *,
    number: int,
    start: datetime,
    end: datetime,
    extra_topics: Sequence[str],
) -> Sitrep:
    """Situation report `number` of the incident: what Vigie collected in [start, end)."""
    topics = _topics(settings, extra_topics)
    return Sitrep(
        incident_id=incident.incident_id,
        name=incident.name,
        number=number,
        label=elapsed_label(end - incident.started_at),
        start=start,
        end=end,
        started_at=incident.started_at,
        topics=_counts(
            store, topics, extra_topics, start=start, end=end, since=incident.started_at
        ),
        stories=_stories(store, start, end),
        events=_events(store, start, end),
        open_alerts=_open_alerts(store, end),
    )


def build_report(
    store: IncidentStore,
    settings: Settings,
    incident: StoredIncident,
    *,
    status: str,
    ended_at: datetime,
    extra_topics: Sequence[str],
    interval: timedelta,
) -> IncidentReport:
    """The final report: volumes over the incident, its stories, the timeline of alerts."""
    topics = _topics(settings, extra_topics)
    start = incident.started_at
    end = max(ended_at, start)
    # One row of volumes per situation-report interval, merged when there would be too many.
    count = max(1, math.ceil((end - start) / interval)) if interval else 1
    step = interval * math.ceil(count / MAX_INTERVALS) if interval else end - start
    intervals = []
    moment = start
    while True:
        stop = min(moment + step, end) if step else end
        counts = store.collected_topic_counts(topics, start=moment, end=stop)
        intervals.append((elapsed_label(moment - start), tuple(counts[t] for t in topics)))
        moment = stop
        if moment >= end:
            break
    queries = incident.parameters.get("extra_queries") or []
    return IncidentReport(
        incident_id=incident.incident_id,
        name=incident.name,
        status=status,
        started_at=start,
        ended_at=end,
        queries=tuple(str(q) for q in queries),
        stop_requested_by=incident.stop_requested_by,
        sitreps=incident.sitreps,
        topics=_counts(store, topics, extra_topics, start=start, end=end, since=start),
        intervals=tuple(intervals),
        stories=_stories(store, start, end),
        events=_events(store, start, end),
        open_alerts=_open_alerts(store, end),
    )


def sitrep_message_id(incident_id: str, number: int) -> str:
    return f"incident.{incident_id}.sitrep.{number}"


def report_message_id(incident_id: str) -> str:
    return f"incident.{incident_id}.report"


def _clean(value: str | None, max_chars: int = MAX_TITLE) -> str:
    return header_safe(value or "", max_chars)


def _topic_name(settings: Settings, topic: str) -> str:
    return _clean(settings.watch_label(topic), 100)


def _event_line(texts: Texts, settings: Settings, event: TimelineEvent) -> str:
    level = texts.get("levels", event.level) if event.level else "?"
    key = f"kind_{event.kind}"
    what = texts.get("incident", key)
    what = (_clean(event.kind, 40) if what == key else what).replace(
        "{by}", _clean(event.by, 120) or "?"
    )
    topic = _topic_name(settings, event.topic)
    return f"{texts.when(event.at)} — [{_clean(level, 20)}] {topic} — {what}"


def _alert_line(texts: Texts, settings: Settings, alert: PeriodAlert) -> str:
    level = _clean(texts.get("levels", alert.level), 20)
    status = texts.get("statuses", alert.status)
    if alert.acknowledged_at is not None:
        # "acknowledged, acknowledged by X" says it twice: the acknowledgement alone is enough.
        state = texts(
            "incident.acked",
            by=_clean(alert.acknowledged_by, 120) or "?",
            moment=texts.when(alert.acknowledged_at),
        )
    else:
        state = f"{status}, {texts('incident.not_acked')}"
    return f"[{level}] {_topic_name(settings, alert.topic)} — {state}"


def _story_items(texts: Texts, stories: Sequence[TopStory]) -> list[dict[str, str | None]]:
    items: list[dict[str, str | None]] = []
    for story in stories:
        meta = [
            _clean(story.source, 120),
            texts.plural("incident.story_sources", story.sources),
            texts.plural("incident.mentions", story.mentions),
        ]
        if story.tier == 1:
            meta.append(texts("incident.major"))
        items.append(
            {
                "title": _clean(story.title),
                "meta": " · ".join(meta),
                "href": safe_href(story.url),
                "url": story.url,
            }
        )
    return items


def _volume_rows(texts: Texts, settings: Settings, topics: Sequence[TopicCount]) -> list[list[str]]:
    return [
        [
            _topic_name(settings, t.topic)
            + (f" ({texts('incident.incident_query')})" if t.extra else ""),
            texts.number(t.period, 0),
            texts.number(t.total, 0),
        ]
        for t in topics
    ]


def _busiest(
    texts: Texts, settings: Settings, topics: Sequence[TopicCount], *, report: bool
) -> str:
    """The topic most mentioned in the period, in a sentence (or that nothing was)."""
    counts = [(t.total if report else t.period, t) for t in topics]
    count, top = max(counts, key=lambda pair: pair[0], default=(0, None))
    if top is None or count == 0:
        return texts("incident.quiet_report" if report else "incident.quiet")
    if report:
        return texts(
            "incident.busiest_report",
            topic=_topic_name(settings, top.topic),
            count=texts.plural("incident.mentions", top.total),
        )
    return texts(
        "incident.busiest",
        topic=_topic_name(settings, top.topic),
        count=texts.plural("incident.new_mentions", top.period),
        total=texts.number(top.total, 0),
    )


def _open_sentence(texts: Texts, alerts: Sequence[PeriodAlert]) -> str:
    if not alerts:
        return texts("incident.no_open_now")
    nobody = sum(1 for a in alerts if a.acknowledged_at is None)
    if nobody == 0:
        who = texts.plural("incident.all_acked", len(alerts))
    elif nobody == len(alerts):
        who = texts.plural("incident.none_acked", len(alerts))
    else:
        who = texts.plural("incident.unacked", nobody)
    return f"{texts.plural('incident.open_now', len(alerts))} {who}"


def _lines(lines: Iterable[str]) -> list[dict[str, str | None]]:
    """Lines of text as the items of a section (no link, no second line)."""
    return [{"title": line, "meta": None, "href": None, "url": None} for line in lines]


def _section(title: str, items: list[dict[str, str | None]], empty: str) -> dict[str, Any]:
    """A heading and its items, or the line saying there is nothing."""
    return {"title": title, "items": items, "empty": empty}


def _table(title: str, header: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {"title": title, "header": header, "rows": rows}


def _incident_steps(settings: Settings, texts: Texts, name: str) -> list[str]:
    """What the cell does at each situation report (docs/runbook.md, sections 1 and 5)."""
    speakers = first_steps(settings, texts)[2]  # who speaks where, as the alerts say it
    return [
        texts("incident.next_point"),
        speakers,
        texts("todo.read"),
        texts("incident.stop", name=name),
    ]


def _alert_ids(texts: Texts, alerts: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(_clean(a, 80) for a in alerts))
    return [texts("incident.alert_ids", alerts=", ".join(ids))] if ids else []


def _incident_message(
    texts: Texts,
    view: dict[str, Any],
    message_id: str,
    subject: str,
    recipients: Sequence[str],
) -> tuple[OutboxMessage, str]:
    """The email (templates/incident.{html,txt}.j2) and its markdown (incident.md.j2)."""
    message = OutboxMessage(
        message_id=message_id,
        kind="incident",
        recipients=tuple(recipients),
        subject=header_safe(f"[Vigie][{texts('incident.tag')}] {subject}"),
        html=render("incident.html.j2", tx=texts, **view),
        text=render("incident.txt.j2", tx=texts, **view),
        critical=True,  # the cell started incident mode: no quiet hours, no hourly cap
    )
    markdown = render("incident.md.j2", tx=texts, md=md_text, md_link=md_link, **view)
    return message, markdown.strip() + "\n"


def render_sitrep(
    sitrep: Sitrep, settings: Settings, recipients: Sequence[str]
) -> tuple[OutboxMessage, str]:
    """Situation report as an outbox message (HTML and plain text) and as markdown.

    Plain words first (the busiest topic, new stories, the open alerts and whether someone has
    each), what to do, who is on duty with phones, then the changes, stories and volumes; the
    ids last, in the "Détails" part.
    """
    texts = Texts(settings.organisation.language, settings.organisation.timezone)
    name = _clean(sitrep.name, 100)
    facts = [
        _busiest(texts, settings, sitrep.topics, report=False),
        texts.plural("incident.new_stories", len(sitrep.stories))
        if sitrep.stories
        else texts("incident.no_stories"),
        _open_sentence(texts, sitrep.open_alerts),
    ]
    view: dict[str, Any] = {
        "report": False,
        "heading": texts(
            "incident.sitrep_heading", number=sitrep.number, label=sitrep.label, name=name
        ),
        "span": texts(
            "incident.span",
            start=texts.when(sitrep.start),
            end=texts.when(sitrep.end),
            zone=texts.zone_name(),
            started=texts.when(sitrep.started_at),
        ),
        "facts": facts,
        "todo": _incident_steps(settings, texts, name),
        "duty_title": texts("incident.on_duty"),
        "on_duty": duty_entries(settings, settings.cell.members, texts),
        "charter": (),
        "sections": [
            _section(
                texts("incident.changes"),
                _lines(_event_line(texts, settings, e) for e in sitrep.events),
                texts("incident.no_changes"),
            ),
            _section(
                texts("incident.stories"),
                _story_items(texts, sitrep.stories),
                texts("incident.no_stories"),
            ),
        ],
        "queries": [],
        "tables": [
            _table(
                texts("incident.volumes"),
                [texts("incident.topic"), texts("incident.period"), texts("incident.total")],
                _volume_rows(texts, settings, sitrep.topics),
            )
        ],
        "after": [
            _section(
                texts("incident.open_alerts"),
                _lines(_alert_line(texts, settings, a) for a in sitrep.open_alerts),
                texts("incident.no_open_alerts"),
            )
        ],
        "details": [
            texts("incident.incident_id", incident_id=_clean(sitrep.incident_id, 80)),
            *_alert_ids(
                texts,
                [e.alert_id for e in sitrep.events] + [a.alert_id for a in sitrep.open_alerts],
            ),
        ],
        "footer": texts("incident.footer", org=_clean(settings.organisation.name, 120)),
    }
    subject = texts("incident.sitrep_subject", name=name, number=sitrep.number, label=sitrep.label)
    return _incident_message(
        texts, view, sitrep_message_id(sitrep.incident_id, sitrep.number), subject, recipients
    )


def render_report(
    report: IncidentReport, settings: Settings, recipients: Sequence[str]
) -> tuple[OutboxMessage, str]:
    """The final incident report as an outbox message and as markdown (stored and published).

    Plain words first (how long, how many reports, the busiest topic, alerts and who took
    charge), then the timeline, volumes and stories; the added queries and ids in "Détails".
    """
    texts = Texts(settings.organisation.language, settings.organisation.timezone)
    name = _clean(report.name, 100)
    key = f"status_{report.status}"
    status = texts.get("incident", key)
    status = _clean(report.status, 40) if status == key else status
    acks = [e for e in report.events if e.kind == "acknowledged"]
    opened = sum(1 for e in report.events if e.kind == "opened")
    facts = [
        texts(
            "incident.lasted",
            duration=texts.duration((report.ended_at - report.started_at).total_seconds()),
            status=status,
            sitreps=texts.plural("incident.sitreps", report.sitreps),
        ),
        _busiest(texts, settings, report.topics, report=True),
        texts.plural(
            "incident.alerts_opened", opened, acks=texts.plural("incident.acks_n", len(acks))
        ),
        _open_sentence(texts, report.open_alerts),
    ]
    if report.stop_requested_by:
        facts.insert(1, texts("incident.stopped_by", by=_clean(report.stop_requested_by, 120)))
    view: dict[str, Any] = {
        "report": True,
        "heading": texts("incident.report_heading", name=name),
        "span": texts(
            "incident.report_span",
            start=texts.when(report.started_at),
            end=texts.when(report.ended_at),
            zone=texts.zone_name(),
        ),
        "facts": facts,
        "todo": [],
        "duty_title": "",
        "on_duty": [],
        "charter": (),
        "sections": [
            _section(
                texts("incident.timeline"),
                _lines(_event_line(texts, settings, e) for e in report.events),
                texts("incident.no_changes"),
            ),
            _section(
                texts("incident.acks"),
                _lines(_event_line(texts, settings, e) for e in acks),
                texts("incident.no_acks"),
            ),
        ],
        "tables": [
            _table(
                texts("incident.volumes"),
                [texts("incident.topic"), texts("incident.total")],
                [[row[0], row[2]] for row in _volume_rows(texts, settings, report.topics)],
            ),
            _table(
                texts("incident.intervals"),
                [
                    texts("incident.moment"),
                    *(_topic_name(settings, t.topic) for t in report.topics),
                ],
                [
                    [label, *(texts.number(c, 0) for c in counts)]
                    for label, counts in report.intervals
                ],
            ),
        ],
        "after": [
            _section(
                texts("incident.report_stories"),
                _story_items(texts, report.stories),
                texts("incident.no_stories"),
            ),
            _section(
                texts("incident.open_alerts"),
                _lines(_alert_line(texts, settings, a) for a in report.open_alerts),
                texts("incident.no_open_alerts"),
            ),
        ],
        "queries": [_clean(q, 300) for q in report.queries],
        "details": [
            texts("incident.incident_id", incident_id=_clean(report.incident_id, 80)),
            *_alert_ids(
                texts,
                [e.alert_id for e in report.events] + [a.alert_id for a in report.open_alerts],
            ),
        ],
        "footer": texts("incident.footer", org=_clean(settings.organisation.name, 120)),
    }
    subject = texts("incident.report_subject", name=name, status=status)
    return _incident_message(
        texts, view, report_message_id(report.incident_id), subject, recipients
    )


def incident_parameters(
    *,
    name: str,
    extra_queries: Sequence[str],
    cadence_minutes: float,
    duration_hours: float,
    sitrep_every_minutes: float,
    extra_recipients: Sequence[str],
    config_path: str,
) -> dict[str, Any]:
    """The parameters as stored with the incident (and shown by `vigie incident list`)."""
    return {
        "name": name,
        "extra_queries": list(extra_queries),
        "cadence_minutes": cadence_minutes,
        "duration_hours": duration_hours,
        "sitrep_every_minutes": sitrep_every_minutes,
        "extra_recipients": list(extra_recipients),
        "config_path": config_path,
    }


def begin_incident(
    store: IncidentStore,
    name: str,
    parameters: dict[str, Any],
    plan: IncidentPlan,
    flow_run_id: str | None,
) -> tuple[StoredIncident, bool]:
    """Start the incident, or find it again; True when another run already leads it.

    A rerun of the same flow run resumes its incident. A second run for a name whose incident
    is still running is a duplicate (two triggers for one crisis) and must do nothing. An
    incident past its end whose run died without closing it is closed as stopped first.
    """
    running = store.running_incident(name)
    if running is not None:
        if flow_run_id is not None and running.flow_run_id == flow_run_id:
            return running, False
        if running.ends_at > plan.started_at:
            return running, True
        store.end_incident(
            running.incident_id,
            status="stopped",
            ended_at=plan.started_at,
            report="Closed without a report: its run ended before it could close it.",
        )
    incident_id = incident_id_for(name, plan.started_at, flow_run_id)
    incident = store.begin_incident(
        incident_id,
        name,
        parameters,
        started_at=plan.started_at,
        ends_at=plan.ends_at,
        flow_run_id=flow_run_id,
    )
    return incident, False


def queue_sitrep(
    store: IncidentStore,
    settings: Settings,
    incident: StoredIncident,
    *,
    number: int,
    start: datetime,
    end: datetime,
    extra_topics: Sequence[str],
    recipients: Sequence[str],
    now: datetime,
) -> tuple[bool, str]:
    """Queue situation report `number` once; return whether it was new, and its markdown."""
    sitrep = build_sitrep(
        store,
        settings,
        incident,
        number=number,
        start=start,
        end=end,
        extra_topics=extra_topics,
    )
    message, markdown = render_sitrep(sitrep, settings, recipients)
    with store.transaction():
        queued = store.queue(message, now) if recipients else False
        store.record_sitrep(incident.incident_id, number)
    return queued, markdown


def close_incident(
    store: IncidentStore,
    settings: Settings,
    incident: StoredIncident,
    *,
    status: str,
    ended_at: datetime,
    recipients: Sequence[str],
) -> tuple[bool, str]:
    """End the incident with its report (stored, and queued once for the cell); return
    whether this call closed it, and the report's markdown."""
    parameters = incident.parameters
    extra = [
        incident_topic(incident.name, n)
        for n in range(1, len(parameters.get("extra_queries") or []) + 1)
    ]
    interval = timedelta(minutes=float(parameters.get("sitrep_every_minutes") or 60))
    report = build_report(
        store,
        settings,
        incident,
        status=status,
        ended_at=ended_at,
        extra_topics=extra,
        interval=interval,
    )
    message, markdown = render_report(report, settings, recipients)
    with store.transaction():
        closed = store.end_incident(
            incident.incident_id, status=status, ended_at=ended_at, report=markdown
        )
        if recipients:
            store.queue(message, ended_at)
    return closed, markdown


# Prefect tasks: each opens the warehouse briefly (the scheduled cycle may run beside us).


def _artifact_key(incident_id: str, what: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{incident_id}-{what}".lower()).strip("-")[:100]


@task(name="begin-incident", cache_policy=NO_CACHE)
def begin_incident_task(
    path: Path,
    name: str,
    parameters: dict[str, Any],
    plan: IncidentPlan,
    flow_run_id: str | None,
) -> tuple[StoredIncident, bool]:
    """Record the incident as running (or find it again); say whether this run is a duplicate."""
    with open_warehouse(path) as con:
        return begin_incident(IncidentStore(con), name, parameters, plan, flow_run_id)


def stop_requested(path: Path, incident_id: str) -> bool:
    """Whether someone asked the incident to stop (`vigie incident stop`); a warehouse busy
    for long (a big load beside us) is asked again at the next poll."""
    try:
        with open_warehouse(path, lock_wait_s=10) as con:
            incident = IncidentStore(con).incident(incident_id)
    except WarehouseError:
        return False
    return (
        incident is None or incident.stop_requested_at is not None or (incident.status != "running")
    )


# Retries are safe: queueing is by message id, and the outbox sends each message once.
@task(name="send-situation-report", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def send_sitrep_task(
    path: Path,
    settings: Settings,
    secrets: Secrets,
    incident: StoredIncident,
    number: int,
    start: datetime,
    end: datetime,
    extra_topics: Sequence[str],
    recipients: Sequence[str],
) -> bool:
    """Queue situation report `number`, send the outbox, publish the report in the UI."""
    with open_warehouse(path) as con:
        queued, markdown = queue_sitrep(
            IncidentStore(con),
            settings,
            incident,
            number=number,
            start=start,
            end=end,
            extra_topics=extra_topics,
            recipients=recipients,
            now=datetime.now(UTC),
        )
    send_pending(path, settings, secrets)
    publish_markdown(
        key=_artifact_key(incident.incident_id, f"sitrep-{number}"),
        markdown=markdown,
        description=f"Situation report {number} of incident {_clean(incident.name, 80)}",
    )
    return queued


def finish_incident(
    settings: Settings,
    secrets: Secrets,
    incident: StoredIncident,
    *,
    status: str,
    ended_at: datetime,
    recipients: Sequence[str],
) -> str:
    """Close the incident with its report, send it; return the report's markdown."""
    path = settings.warehouse_path
    with open_warehouse(path) as con:
        store = IncidentStore(con)
        current = store.incident(incident.incident_id) or incident
        _, markdown = close_incident(
            store, settings, current, status=status, ended_at=ended_at, recipients=recipients
        )
    send_pending(path, settings, secrets)
    return markdown


@task(name="finish-incident", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def finish_incident_task(
    settings: Settings,
    secrets: Secrets,
    incident: StoredIncident,
    status: str,
    recipients: Sequence[str],
) -> str:
    """End the incident: its report stored, emailed and published in the UI."""
    markdown = finish_incident(
        settings,
        secrets,
        incident,
        status=status,
        ended_at=datetime.now(UTC),
        recipients=recipients,
    )
    publish_markdown(
        key=_artifact_key(incident.incident_id, "report"),
        markdown=markdown,
        description=f"Report of incident {_clean(incident.name, 80)} ({status})",
    )
    return markdown
