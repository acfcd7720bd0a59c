"""The cell's digest, daily or weekly: what happened in the period against the one before.

`build_digest` reads the warehouse (volumes and negative share per topic from the 5-minute
aggregates, top stories, sources that failed, alerts of the period, a volume chart per topic);
`render_digest` turns it into one outbox message for the whole cell, in the organisation's
language, HTML with inline CSS and its charts inline, plus the plain-text alternative. The
message id names the period and its end, so building the same digest again queues nothing new.
Everything that came from the internet (titles, links, error messages) is escaped, cleaned of
control characters and bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import get_month_names
from babel.numbers import format_percent

from tasks.notify.chart import chart_cid, hourly_points, volume_chart_png
from tasks.notify.emails import header_safe
from tasks.notify.rendering import LOCALES, Texts, catalogue, render, safe_href
from vigie.models import InlineImage, OutboxMessage
from vigie.settings import Settings
from warehouse.store import Store

Period = Literal["daily", "weekly"]
PERIODS: dict[str, timedelta] = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
# Chart buckets: hours for a day, quarters of a day for a week.
CHART_STEPS: dict[str, timedelta] = {"daily": timedelta(hours=1), "weekly": timedelta(hours=6)}
MAX_STORIES = 10
MAX_CHARTS = 6
MAX_ROWS = 20
MAX_TITLE = 200
MAX_ERROR = 200


@dataclass(frozen=True, slots=True)
class TopicVolume:
    topic: str
    mentions: int
    previous: int
    negative: int
    scored: int
    previous_negative: int
    previous_scored: int
    chart: InlineImage | None = None

    @property
    def change_pct(self) -> float | None:
        """Change against the previous period, in percent; None when it had no mention."""
        if not self.previous:
            return None
        return 100.0 * (self.mentions - self.previous) / self.previous

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.scored if self.scored else None

    @property
    def previous_negative_share(self) -> float | None:
        return self.previous_negative / self.previous_scored if self.previous_scored else None


@dataclass(frozen=True, slots=True)
class TopStory:
    story_id: str
    title: str
    url: str
    source: str
    tier: int
    mentions: int
    sources: int
    first_published_at: datetime
    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FailedSource:
    source: str
    failures: int
    runs: int
    last_error: str | None
    last_failure_at: datetime | None
    still_failing: bool
    health: str


@dataclass(frozen=True, slots=True)
class PeriodAlert:
    alert_id: str
    topic: str
    level: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    severity: float | None
    mentions_in_window: int
    acknowledged_by: str | None
    acknowledged_at: datetime | None


@dataclass(frozen=True, slots=True)
class Digest:
    period: Period
    start: datetime
    end: datetime
    previous_start: datetime
    topics: tuple[TopicVolume, ...]
    stories: tuple[TopStory, ...]
    failed_sources: tuple[FailedSource, ...]
    alerts: tuple[PeriodAlert, ...]

    @property
    def images(self) -> tuple[InlineImage, ...]:
        return tuple(t.chart for t in self.topics if t.chart is not None)


def period_bounds(period: Period, end: datetime) -> tuple[datetime, datetime, datetime]:
    """(previous start, start, end) of the period ending at `end` and of the one before."""
    if period not in PERIODS:
        raise ValueError(f"unknown digest period {period!r} (daily or weekly)")
    length = PERIODS[period]
    end = end.astimezone(UTC)
    return end - 2 * length, end - length, end


def default_end(now: datetime, timezone: str) -> datetime:
    """The end of the digest run at `now`: the last whole hour in the organisation's time
    zone, so that a rerun within the hour builds the same digest (and queues nothing new)."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def build_digest(store: Store, settings: Settings, *, period: Period, end: datetime) -> Digest:
    """Everything the digest of the period ending at `end` says, read from the warehouse."""
    previous_start, start, end = period_bounds(period, end)
    topics = [w.name for w in settings.watch]
    now_counts = store.topic_period_counts(topics, start=start, end=end)
    before_counts = store.topic_period_counts(topics, start=previous_start, end=start)
    alerts = tuple(
        PeriodAlert(**row) for row in store.period_alerts(start=start, end=end)[:MAX_ROWS]
    )
    language = settings.organisation.language
    volumes = []
    # A chart for each topic with mentions in the period (the busiest first, a few at most).
    busy = [t for t in topics if now_counts[t][0]]
    charted = sorted(busy, key=lambda t: -now_counts[t][0])[:MAX_CHARTS]
    for topic in topics:
        mentions, negative, scored = now_counts[topic]
        previous, previous_negative, previous_scored = before_counts[topic]
        chart = None
        if topic in charted:
            step = CHART_STEPS[period]
            points = hourly_points(
                store, topic, end=end, hours=int(PERIODS[period] / timedelta(hours=1)), step=step
            )
            opened = [a.opened_at for a in alerts if a.topic == topic and a.opened_at >= start]
            chart = InlineImage(
                cid=chart_cid(topic),
                png=volume_chart_png(
                    points,
                    marker=min(opened) if opened else None,
                    title=f"{settings.watch_label(topic)}{' : ' if language == 'fr' else ': '}"
                    f"{_chart_unit(step, language)}",
                    language=language,
                    tz=settings.organisation.timezone,
                ),
            )
        volumes.append(
            TopicVolume(
                topic,
                mentions,
                previous,
                negative,
                scored,
                previous_negative,
                previous_scored,
                chart,
            )
        )
    stories = tuple(
        TopStory(**{**row, "topics": tuple(row["topics"] or ())})
        for row in store.top_stories(start=start, end=end, limit=MAX_STORIES)
    )
    failed = tuple(
        FailedSource(**row) for row in store.failed_sources(start=start, end=end)[:MAX_ROWS]
    )
    return Digest(period, start, end, previous_start, tuple(volumes), stories, failed, alerts)


def _chart_unit(step: timedelta, language: str) -> str:
    hours = int(step / timedelta(hours=1))
    text = DIGEST_TEXT[language]
    return text["chart_unit_hour"] if hours == 1 else text["chart_unit_hours"].format(hours=hours)


# Month names in the language (Babel's CLDR data), for dates written without the machine's locale.
MONTHS = {
    language: [get_month_names("wide", locale=LOCALES[language])[m] for m in range(1, 13)]
    for language in LOCALES
}
# The catalogue's texts (tasks/notify/catalogue), as the incident report reads them too.
STATUS_NAMES = {language: dict(catalogue(language)["statuses"]) for language in LOCALES}
HEALTH_NAMES = {language: dict(catalogue(language)["digest_health"]) for language in LOCALES}
DIGEST_TEXT: dict[str, dict[str, str]] = {
    language: dict(catalogue(language)["digest"]) for language in LOCALES
}


def format_date(moment: datetime, language: str, *, year: bool = True) -> str:
    """`25 novembre 2026` / `25 November 2026`, without the system's locale."""
    month = MONTHS[language][moment.month - 1]
    day = "1er" if language == "fr" and moment.day == 1 else str(moment.day)
    return f"{day} {month} {moment.year}" if year else f"{day} {month}"


def format_moment(moment: datetime, language: str, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    date = format_date(local, language)
    return f"{date} à {local:%H:%M}" if language == "fr" else f"{date}, {local:%H:%M}"


def format_range(first: datetime, last: datetime, language: str) -> str:
    """Two local dates as one range: `18 au 25 novembre 2026` / `18–25 November 2026`."""
    if language == "fr":
        if (first.year, first.month) == (last.year, last.month):
            return f"{format_date(first, language, year=False).split()[0]} au " + format_date(
                last, language
            )
        left = format_date(first, language, year=first.year != last.year)
        return f"{left} au {format_date(last, language)}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{format_date(last, language)}"
    left = format_date(first, language, year=first.year != last.year)
    return f"{left} – {format_date(last, language)}"


def _percent(share: float, language: str) -> str:
    # Babel's percent pattern: "45 %" in French, "45%" in English (its no-break spaces become
    # plain ones, as the rest of the text writes them).
    shown = format_percent(round(share, 2), locale=LOCALES[language])
    return shown.replace("\xa0", " ").replace("\u202f", " ")


def _change(volume: TopicVolume, language: str) -> str:
    pct = volume.change_pct
    if pct is None:
        return DIGEST_TEXT[language]["new"] if volume.mentions else "—"
    shown = _percent(round(pct) / 100, language)
    return shown if shown.startswith("-") else "+" + shown


def _share(share: float | None, language: str) -> str:
    return "—" if share is None else _percent(share, language)


def cell_recipients(settings: Settings) -> tuple[str, ...]:
    """Every member of the cell, once each (addresses compared without case), level by level."""
    seen: set[str] = set()
    recipients = []
    for member in sorted(settings.cell.members, key=lambda m: m.level):
        key = str(member.email).lower()
        if key not in seen:
            seen.add(key)
            recipients.append(str(member.email))
    return tuple(recipients)


def message_id(digest: Digest) -> str:
    return f"digest.{digest.period}.{digest.end.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def digest_subject(digest: Digest, settings: Settings) -> str:
    language = settings.organisation.language
    text = DIGEST_TEXT[language]
    zone = ZoneInfo(settings.organisation.timezone)
    # The day the digest is about: the end's date (a period ending at midnight is the day before).
    last = (digest.end - timedelta(seconds=1)).astimezone(zone)
    if digest.period == "daily":
        when = format_date(last, language)
    else:
        first = digest.start.astimezone(zone)
        when = text["week"].format(range=format_range(first, last, language))
    tag = text[f"tag_{digest.period}"]
    return header_safe(f"[Vigie][{tag}] {settings.organisation.name} — {when}")


def _clean(value: str | None, max_chars: int = MAX_TITLE) -> str:
    """One line of untrusted text: control characters out, whitespace collapsed, bounded."""
    return header_safe(value or "", max_chars)


def render_digest(digest: Digest, settings: Settings) -> OutboxMessage:
    """The digest as one outbox message for the whole cell (templates/digest.*.j2: HTML, plain
    text, charts), in the organisation's language with its number and date formats."""
    language = settings.organisation.language
    texts = Texts(language, settings.organisation.timezone)
    text = DIGEST_TEXT[language]
    zone = ZoneInfo(settings.organisation.timezone)
    org = _clean(settings.organisation.name)

    def moment(value: datetime) -> str:
        return format_moment(value, language, zone)

    topics = []
    for volume in digest.topics:
        label = settings.watch_label(volume.topic)
        topics.append(
            {
                "topic": label,
                "mentions": texts.number(volume.mentions, 0),
                "previous": texts.number(volume.previous, 0),
                "change": _change(volume, language),
                "share": _share(volume.negative_share, language),
                "was": text["negative_was"].format(
                    share=_share(volume.previous_negative_share, language)
                ),
                "chart_cid": volume.chart.cid if volume.chart is not None else None,
                "chart_alt": text["chart_alt"].format(topic=label),
            }
        )
    stories = []
    for story in digest.stories:
        meta = text["story_meta"].format(
            source=_clean(story.source, 120),
            sources=texts.plural("digest.sources_n", story.sources),
            mentions=texts.plural("digest.mentions_n", story.mentions),
        )
        if story.tier == 1:
            meta += f" · {text['major']}"
        meta += f" · {moment(story.first_published_at)}"
        href = safe_href(story.url)
        stories.append(
            {
                "title": _clean(story.title),
                "href": href,
                "url": _clean(story.url, 2000),
                "meta": meta,
            }
        )
    failed = []
    for source in digest.failed_sources:
        parts = []
        if source.failures:
            parts.append(
                texts.plural(
                    "digest.failures",
                    source.failures,
                    runs=texts.plural("digest.runs", source.runs),
                )
            )
            if source.still_failing:
                parts.append(text["still_failing"])
        health = HEALTH_NAMES[language].get(source.health, source.health)
        if health:
            parts.append(health)
        failed.append(
            {
                "name": _clean(source.source, 120),
                "facts": ", ".join(parts),
                "error": _clean(source.last_error, MAX_ERROR),
            }
        )
    alerts = []
    for alert in digest.alerts:
        level = texts.get("levels", alert.level)
        status = STATUS_NAMES[language].get(alert.status, alert.status)
        facts = [text["opened"].format(moment=moment(alert.opened_at))]
        if alert.resolved_at is not None:
            facts.append(text["resolved"].format(moment=moment(alert.resolved_at)))
        if alert.acknowledged_at is not None:
            facts.append(
                text["acked"].format(
                    by=_clean(alert.acknowledged_by, 120) or "?",
                    moment=moment(alert.acknowledged_at),
                )
            )
        else:
            facts.append(text["not_acked"])
        alerts.append(
            {
                "summary": f"[{level}] {settings.watch_label(alert.topic)} — {status}",
                "alert_id": alert.alert_id,
                "facts": "; ".join(facts),
            }
        )
    context = {
        "tx": texts,
        "heading": f"{text[f'heading_{digest.period}']} — {org}",
        "span": text["span"].format(
            start=moment(digest.start),
            end=moment(digest.end),
            zone=texts.zone_name(),
            length=text[f"length_{digest.period}"],
        ),
        # French typography: a space before the colon.
        "colon": " : " if language == "fr" else ": ",
        "topics": topics,
        "stories": stories,
        "failed": failed,
        "alerts": alerts,
        "footer": text["footer"].format(org=org),
    }
    return OutboxMessage(
        message_id=message_id(digest),
        kind="digest",
        recipients=cell_recipients(settings),
        subject=digest_subject(digest, settings),
        html=render("digest.html.j2", **context),
        text=render("digest.txt.j2", **context) + "\n",
        images=digest.images,
    )


def digest_summary(digest: Digest) -> dict[str, Any]:
    """What the command line prints of a digest."""
    return {
        "period": digest.period,
        "start": digest.start.isoformat(),
        "end": digest.end.isoformat(),
        "mentions": {t.topic: t.mentions for t in digest.topics},
        "stories": len(digest.stories),
        "failed_sources": len(digest.failed_sources),
        "alerts": len(digest.alerts),
    }
