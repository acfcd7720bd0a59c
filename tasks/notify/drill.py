"""Drills: rehearse step 5 with a labelled synthetic crisis that goes through the real pipeline.

A drill serves, from a feed server on 127.0.0.1 that it starts itself, three feeds (a major
daily, a radio, a forum) about the organisation, every title labelled `[EXERCICE VIGIE]` (or
`[VIGIE DRILL]` in English): first three calm days (the sources' first cycle, so history, not
news), then a wave of negative coverage with crisis vocabulary in the last hour. Watch cycles
collect, match, enrich, validate, load, detect and alert on it with the watch-cycle tasks; the
alert email goes to the cell marked as a drill; the drill then waits for someone to take charge
(`vigie ack` or the acknowledge-alert run, as for a real alert), and reports the time to detect
and the time to acknowledge, stored in `drills`, emailed to the cell and shown in Prefect.

Nothing of it mixes with real figures: its topic is the drill id (never a configured watch), its
sources and alerts are marked in the warehouse (migration 012) and left out of digests, status
and detection of real topics. A drill is known by its name: a rerun of the same name resumes
or reports the drill it finds, and sends nothing twice.

This module holds the plain functions (tested without Prefect) and the thin tasks around them.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.load import send_pending
from tasks.notify.digest import cell_recipients
from tasks.notify.emails import TEXT as ALERT_TEXT
from tasks.notify.emails import header_safe
from tasks.notify.rendering import LOCALES, Texts, catalogue, render
from tasks.publish.report import md_text
from tasks.publish.ui import publish_markdown
from vigie.errors import ConfigError
from vigie.localservers import FeedServer
from vigie.models import OutboxMessage, SourceState
from vigie.scenario import Item, rss_document
from vigie.settings import Secrets, Settings, Source, Watch
from warehouse.connection import open_warehouse
from warehouse.drills import (
    AlertState,
    DrillRecord,
    alert_state,
    begin_drill,
    drill_alert,
    finish_drill,
    read_drill,
    record_detection,
    record_injection,
    register_drill_sources,
)
from warehouse.store import Store

DRILL_PREFIX = "drill-"
MAX_SLUG = 48
# The label on every synthetic title, and the drill watch's query that matches it.
LABEL = {"fr": "EXERCICE VIGIE", "en": "VIGIE DRILL"}
QUERY = {"fr": '"exercice vigie"', "en": '"vigie drill"'}
# Where the synthetic articles claim to live: a reserved domain, never fetched.
LINK_BASE = "https://drill.vigie.invalid"
CALM_DAYS = 3
CALM_EVERY_HOURS = 6


@dataclass(frozen=True, slots=True)
class DrillFeed:
    label: str
    platform: str
    tier: int

    @property
    def path(self) -> str:
        return f"/drill/{self.label}.xml"


# A story that spreads from a major daily to a radio and a consumer forum (pick-up, spread).
FEEDS = (
    DrillFeed("quotidien", "news", 1),
    DrillFeed("radio", "news", 2),
    DrillFeed("forum", "forum", 3),
)

CALM_TITLES = {
    "fr": (
        "{org} présente ses résultats trimestriels",
        "Portes ouvertes chez {org} ce week-end",
        "{org} soutient le festival de la région",
        "Nouveau produit : {org} élargit sa gamme",
    ),
    "en": (
        "{org} presents its quarterly results",
        "Open house at {org} this weekend",
        "{org} sponsors the regional festival",
        "New product: {org} widens its range",
    ),
}
# (title, minutes before the injection); the same title on several feeds is one story.
CRISIS_TITLES = {
    "fr": (
        ("Rappel de produits {org} : risque de contamination", 48),
        ("Intoxications : des familles accusent {org}", 41),
        ("Scandale chez {org} : l’entreprise savait-elle ?", 34),
        ("Appel au boycott de {org} sur les réseaux sociaux", 27),
        ("Enquête ouverte sur {org} après des plaintes", 20),
        ("Pétition contre {org} : des milliers de signatures", 13),
        ("Hospitalisations : {org} mise en cause", 8),
        ("{org} refuse de commenter le rappel, la colère monte", 3),
    ),
    "en": (
        ("{org} product recall: contamination risk", 48),
        ("Poisoning: families blame {org}", 41),
        ("Scandal at {org}: did the company know?", 34),
        ("Calls to boycott {org} spread on social media", 27),
        ("Investigation opened into {org} after complaints", 20),
        ("Petition against {org} gathers thousands of signatures", 13),
        ("Hospitalisations: {org} under fire", 8),
        ("{org} declines to comment on the recall, outrage grows", 3),
    ),
}

# The report's texts, from the catalogue (tasks/notify/catalogue).
REPORT_TEXT = {language: dict(catalogue(language)["drill_report"]) for language in LOCALES}


def drill_id_for(name: str) -> str:
    """The drill's id from its name: `drill-` and the name in lower-case ASCII words.

    The same name always gives the same id (a rerun finds its drill); a name with no letter or
    digit gets a short hash instead.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:MAX_SLUG].strip("-")
    if not slug:
        slug = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return DRILL_PREFIX + slug


def source_name(drill_id: str, feed: DrillFeed) -> str:
    return f"{drill_id}/{feed.label}"


def check_drill_topic(settings: Settings, topic: str) -> None:
    """A drill's topic must not be a configured watch, or its mentions would count as real."""
    if any(w.name == topic for w in settings.watch):
        raise ConfigError(
            f"the drill topic {topic!r} is also a watch name in the configuration: "
            "choose another drill name"
        )


@dataclass(frozen=True, slots=True)
class SyntheticItem:
    title: str
    link: str
    published_at: datetime


def drill_items(
    feed: DrillFeed,
    *,
    drill_id: str,
    organisation: str,
    language: str,
    started_at: datetime,
    injected_at: datetime | None,
) -> list[SyntheticItem]:
    """The entries of one drill feed: calm days before `started_at`, and the crisis before
    `injected_at` once it is injected. Deterministic, so a rerun serves the same entries."""
    label = LABEL[language]
    calm = CALM_TITLES[language]
    offset = FEEDS.index(feed)
    items = [
        SyntheticItem(
            f"[{label}] " + calm[(index + offset) % len(calm)].format(org=organisation),
            f"{LINK_BASE}/{drill_id}/{feed.label}/calm-{index}",
            started_at - timedelta(hours=CALM_EVERY_HOURS * index + 2 * offset + 1),
        )
        for index in range(CALM_DAYS * 24 // CALM_EVERY_HOURS)
    ]
    if injected_at is not None:
        for index, (title, minutes) in enumerate(CRISIS_TITLES[language]):
            items.append(
                SyntheticItem(
                    f"[{label}] " + title.format(org=organisation),
                    f"{LINK_BASE}/{drill_id}/{feed.label}/crisis-{index}",
                    # The feeds carry the story a few minutes apart, as copies do.
                    injected_at - timedelta(minutes=max(1, minutes - 2 * offset)),
                )
            )
    return sorted(items, key=lambda item: item.published_at, reverse=True)


def feed_document(
    feed: DrillFeed, items: Sequence[SyntheticItem], *, drill_id: str, language: str
) -> str:
    """The RSS document of a drill feed (titles escaped: the organisation name is config)."""
    anchor = max((item.published_at for item in items), default=datetime.now(UTC))
    entries = [
        Item(item.title, item.link, f"<p>{escape(item.title)}</p>", anchor - item.published_at)
        for item in items
    ]
    return rss_document(f"[{LABEL[language]}] {drill_id} {feed.label}", entries, anchor)


def serve_drill(
    server: FeedServer,
    *,
    drill_id: str,
    organisation: str,
    language: str,
    started_at: datetime,
    injected_at: datetime | None,
) -> dict[str, str]:
    """Serve every drill feed (calm, or with the crisis once injected); URL by feed label."""
    urls = {}
    for feed in FEEDS:
        items = drill_items(
            feed,
            drill_id=drill_id,
            organisation=organisation,
            language=language,
            started_at=started_at,
            injected_at=injected_at,
        )
        urls[feed.label] = server.set(
            feed.path, feed_document(feed, items, drill_id=drill_id, language=language)
        )
    return urls


def drill_settings(settings: Settings, *, drill_id: str, urls: dict[str, str]) -> Settings:
    """The settings of the drill's cycles: the organisation's own (cell, email, detection,
    collection), with the drill's watch (its topic is the drill id) and its sources only."""
    language = settings.organisation.language
    watch = Watch(name=drill_id, query=QUERY[language])
    sources = tuple(
        Source(
            name=source_name(drill_id, feed),
            kind="rss",
            url=urls[feed.label],
            platform=feed.platform,  # type: ignore[arg-type]
            tier=feed.tier,
            language=language,  # type: ignore[arg-type]
        )
        for feed in FEEDS
    )
    return settings.model_copy(update={"watch": (watch,), "sources": sources})


def detection_settings(settings: Settings) -> Settings:
    """The drill's settings for detection, without sources: collection coverage is not judged
    for a drill topic (its feeds are served by the drill itself, and its calm history is a
    backfill that no source run of the past covers)."""
    return settings.model_copy(update={"sources": ()})


def wait_for_acknowledgement(
    read_state: Callable[[], AlertState | None],
    *,
    wait: timedelta,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertState | None:
    """Poll the alert until someone takes charge of it (or it is resolved), at most `wait`.

    Returns the last state read; still `open` means nobody took charge in time.
    """
    deadline = clock() + wait.total_seconds()
    while True:
        state = read_state()
        if state is None or state.status != "open":
            return state
        remaining = deadline - clock()
        if remaining <= 0:
            return state
        sleep(min(poll_s, remaining))


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    status: str  # acknowledged | not_acknowledged | not_detected
    alert_sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    time_to_ack_s: float | None = None


def drill_outcome(state: AlertState | None) -> DrillOutcome:
    """The result of the wait: the time to acknowledge runs from the alert email's sending
    (from the alert's opening when the email could not be sent)."""
    if state is None:
        return DrillOutcome("not_detected")
    if state.acknowledged_at is None:
        return DrillOutcome("not_acknowledged", state.email_sent_at)
    start = state.email_sent_at or state.opened_at
    return DrillOutcome(
        "acknowledged",
        state.email_sent_at,
        state.acknowledged_at,
        state.acknowledged_by,
        max(0.0, (state.acknowledged_at - start).total_seconds()),
    )


def format_duration(seconds: float | None) -> str:
    """`45 s`, `2 min 05 s`, `1 h 03 min`; an em dash when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _report_rows(record: DrillRecord, language: str, zone: str) -> list[tuple[str, str]]:
    text = REPORT_TEXT[language]
    texts = Texts(language, zone)

    def moment(value: datetime | None) -> str:
        # To the second: a drill measures how fast the chain goes.
        return texts.when(value, seconds=True) if value else "—"

    rows = [
        (text["started"], moment(record.started_at)),
        (text["injected"], moment(record.injected_at)),
    ]
    if record.status == "not_detected":
        return rows
    rows += [
        (text["detected"], moment(record.detected_at)),
        (text["ttd"], format_duration(record.time_to_detect_s)),
        (text["sent"], moment(record.alert_sent_at) if record.alert_sent_at else text["not_sent"]),
    ]
    if record.status == "acknowledged":
        rows += [
            (
                text["acknowledged"],
                text["by"].format(
                    by=record.acknowledged_by or "?", at=moment(record.acknowledged_at)
                ),
            ),
            (text["tta"], format_duration(record.time_to_ack_s)),
        ]
    else:
        rows.append(
            (text["acknowledged"], text["not_acknowledged"].format(minutes=record.ack_wait_minutes))
        )
    rows.append((text["alert"], record.alert_id or "—"))
    return rows


def drill_report_message(settings: Settings, record: DrillRecord) -> OutboxMessage:
    """The short drill report for the cell, in the organisation's language, marked as a drill.

    Its id names the drill, so a rerun queues nothing new.
    """
    language = settings.organisation.language
    text = REPORT_TEXT[language]
    name = header_safe(record.name, 120)
    values = {"name": name, "drill_id": record.drill_id, "label": LABEL[language]}
    rows = _report_rows(record, language, settings.organisation.timezone)
    conclusion = text["not_detected"] if record.status == "not_detected" else ""
    banner = ALERT_TEXT[language]["drill"]
    colon = " : " if language == "fr" else ": "
    body = render(
        "drill_report.html.j2",
        banner=banner,
        intro=text["intro"].format(**values),
        rows=rows,
        conclusion=conclusion,
        footer=text["footer"],
    )
    plain = "\n".join(
        [
            banner,
            "",
            text["intro"].format(**values),
            "",
            *(f"{k}{colon}{v}" for k, v in rows),
            *([f"\n{conclusion}"] if conclusion else []),
            "",
            text["footer"],
        ]
    )
    return OutboxMessage(
        message_id=f"drill.{record.drill_id}.report",
        kind="drill_report",
        recipients=cell_recipients(settings),
        subject=header_safe(
            text["subject"].format(tag=ALERT_TEXT[language]["drill_tag"], name=name)
        ),
        html=body,
        text=plain + "\n",
        drill=True,
    )


def drill_markdown(record: DrillRecord) -> str:
    """The drill's result as a Prefect markdown artifact (names escaped for the UI)."""
    lines = [
        f"# DRILL / EXERCICE — {md_text(record.name)}",
        "",
        "A synthetic crisis, not a real one: these figures are not part of the watch.",
        "",
        "| what | value |",
        "|---|---|",
    ]
    for key, value in (
        ("drill", record.drill_id),
        ("status", record.status),
        ("started", record.started_at),
        ("injected", record.injected_at),
        ("alert opened", record.detected_at),
        ("time to detect", format_duration(record.time_to_detect_s)),
        ("alert email sent", record.alert_sent_at),
        ("acknowledged by", record.acknowledged_by),
        ("acknowledged at", record.acknowledged_at),
        ("time to acknowledge", format_duration(record.time_to_ack_s)),
        ("alert", record.alert_id),
    ):
        shown = value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
        lines.append(f"| {key} | {md_text('—' if shown is None else shown)} |")
    if record.status == "not_acknowledged":
        lines += ["", f"Not acknowledged within {record.ack_wait_minutes} min."]
    elif record.status == "not_detected":
        lines += ["", "No alert opened: the synthetic crisis was not detected."]
    return "\n".join(lines)


def drill_summary(record: DrillRecord) -> dict[str, Any]:
    """What the drill flow returns and `vigie drill` prints."""
    return {
        "drill_id": record.drill_id,
        "name": record.name,
        "status": record.status,
        "alert_id": record.alert_id,
        "time_to_detect_s": record.time_to_detect_s,
        "time_to_ack_s": record.time_to_ack_s,
        "acknowledged_by": record.acknowledged_by,
        "ack_wait_minutes": record.ack_wait_minutes,
    }


@task(name="begin-drill", cache_policy=NO_CACHE)
def begin_drill_task(
    path: Path,
    drill_id: str,
    name: str,
    now: datetime,
    ack_wait_minutes: int,
    flow_run_id: str | None,
) -> DrillRecord:
    """Record the drill (or find it, on a rerun)."""
    with open_warehouse(path) as con:
        return begin_drill(
            Store(con),
            drill_id=drill_id,
            name=name,
            topic=drill_id,
            now=now,
            ack_wait_minutes=ack_wait_minutes,
            flow_run_id=flow_run_id,
        )


@task(name="register-drill-sources", cache_policy=NO_CACHE)
def register_drill_sources_task(path: Path, sources: Sequence[Source]) -> dict[str, SourceState]:
    """Mark the drill's sources as drill sources; return every source's HTTP validators."""
    with open_warehouse(path) as con:
        store = Store(con)
        register_drill_sources(store, sources)
        return store.source_states()


@task(name="inject-crisis", cache_policy=NO_CACHE)
def inject_crisis_task(
    path: Path, server: FeedServer, drill: DrillRecord, organisation: str, language: str
) -> datetime:
    """Serve the crisis on the drill's feeds; return when it was (first) injected."""
    with open_warehouse(path) as con:
        injected_at = record_injection(Store(con), drill.drill_id, datetime.now(UTC))
    serve_drill(
        server,
        drill_id=drill.drill_id,
        organisation=organisation,
        language=language,
        started_at=drill.started_at,
        injected_at=injected_at,
    )
    return injected_at


@task(name="find-drill-alert", cache_policy=NO_CACHE)
def find_drill_alert_task(path: Path, drill_id: str, detected_at: datetime) -> str | None:
    """The drill topic's alert, recorded as the detection (kept from the first time)."""
    with open_warehouse(path) as con:
        store = Store(con)
        alert_id = drill_alert(store, drill_id)
        if alert_id is not None:
            record_detection(store, drill_id, alert_id, detected_at)
        return alert_id


@task(name="wait-for-acknowledgement", cache_policy=NO_CACHE)
def wait_for_acknowledgement_task(
    path: Path, alert_id: str | None, wait_minutes: int, poll_s: float
) -> DrillOutcome:
    """Wait until someone of the cell takes charge of the drill alert, at most the bound."""
    if alert_id is None:
        return DrillOutcome("not_detected")

    def read() -> AlertState | None:
        with open_warehouse(path) as con:
            return alert_state(Store(con), alert_id)

    return drill_outcome(
        wait_for_acknowledgement(read, wait=timedelta(minutes=wait_minutes), poll_s=poll_s)
    )


@task(name="finish-drill", cache_policy=NO_CACHE)
def finish_drill_task(path: Path, drill_id: str, outcome: DrillOutcome) -> DrillRecord:
    """Store the drill's outcome and close its alert (a drill alert must not linger)."""
    now = datetime.now(UTC)
    with open_warehouse(path) as con:
        store = Store(con)
        record = finish_drill(
            store,
            drill_id,
            status=outcome.status,
            alert_sent_at=outcome.alert_sent_at,
            acknowledged_at=outcome.acknowledged_at,
            acknowledged_by=outcome.acknowledged_by,
            time_to_ack_s=outcome.time_to_ack_s,
            now=now,
        )
        if record.alert_id is not None:
            state = alert_state(store, record.alert_id)
            if state is not None and state.status != "resolved":
                store.resolve_alert(record.alert_id, now, f"drill {drill_id} ended")
        return record


@task(name="report-drill", cache_policy=NO_CACHE)
def report_drill_task(path: Path, settings: Settings, secrets: Secrets, drill_id: str) -> list[str]:
    """Queue the drill report for the cell (once), send the outbox, publish the artifact."""
    with open_warehouse(path) as con:
        store = Store(con)
        record = read_drill(store, drill_id)
        assert record is not None
        store.queue(drill_report_message(settings, record), datetime.now(UTC))
    delivery = send_pending(path, settings, secrets)
    publish_markdown(
        key=drill_id,
        markdown=drill_markdown(record),
        description=f"Drill (exercise) {record.name}: time to detect and to acknowledge",
    )
    return delivery.sent
