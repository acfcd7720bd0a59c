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

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tasks.notify.chart import chart_cid, hourly_points, volume_chart_png
from tasks.notify.emails import LEVEL_NAMES, _safe_href, header_safe
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
                    title=f"{topic} : {_chart_unit(step, language)}",
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
    if language == "fr":
        return "mentions par heure" if hours == 1 else f"mentions par tranche de {hours} h"
    return "mentions per hour" if hours == 1 else f"mentions per {hours} hours"


MONTHS = {
    "fr": (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    ).split(),
    "en": (
        "January February March April May June July August September October November December"
    ).split(),
}
STATUS_NAMES = {
    "fr": {"open": "ouverte", "acknowledged": "prise en charge", "resolved": "résolue"},
    "en": {"open": "open", "acknowledged": "acknowledged", "resolved": "resolved"},
}
HEALTH_NAMES = {
    "fr": {
        "ok": "",
        "failing": "en panne",
        "not_a_feed": "ne renvoie plus de flux",
        "silent": "muette",
    },
    "en": {
        "ok": "",
        "failing": "down",
        "not_a_feed": "no longer returns a feed",
        "silent": "silent",
    },
}
DIGEST_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "tag_daily": "RÉSUMÉ",
        "tag_weekly": "RÉSUMÉ HEBDOMADAIRE",
        "heading_daily": "Résumé quotidien",
        "heading_weekly": "Résumé de la semaine",
        "week": "semaine du {range}",
        "span": "Du {start} au {end} (heure de {zone}), comparé {length}.",
        "length_daily": "aux 24 heures précédentes",
        "length_weekly": "aux 7 jours précédents",
        "volumes": "Volumes et tonalité",
        "topic": "Sujet",
        "mentions": "Mentions",
        "previous": "Période précédente",
        "change": "Variation",
        "negative": "Part négative",
        "negative_was": "avant : {share}",
        "new": "nouveau",
        "chart_alt": "Volume des mentions de « {topic} »",
        "stories": "Principaux sujets de la période",
        "no_stories": "Aucune mention dans la période.",
        "story_meta": "{source} · {sources} · {mentions}",
        "sources_n": "{n} source(s)",
        "mentions_n": "{n} mention(s)",
        "major": "média majeur",
        "failed": "Sources en échec",
        "no_failed": "Aucune source n’a échoué pendant la période.",
        "failures": "{failures} échec(s) sur {runs} collecte(s)",
        "still_failing": "toujours en échec",
        "recovered": "rétablie depuis",
        "alerts": "Alertes de la période",
        "no_alerts": "Aucune alerte pendant la période.",
        "opened": "ouverte le {moment}",
        "resolved": "résolue le {moment}",
        "acked": "prise en charge par {by} le {moment}",
        "not_acked": "personne ne l’a prise en charge",
        "footer": "Résumé envoyé par Vigie à la cellule de crise de {org}.",
    },
    "en": {
        "tag_daily": "DIGEST",
        "tag_weekly": "WEEKLY DIGEST",
        "heading_daily": "Daily digest",
        "heading_weekly": "Weekly digest",
        "week": "week of {range}",
        "span": "From {start} to {end} ({zone} time), against {length}.",
        "length_daily": "the 24 hours before",
        "length_weekly": "the 7 days before",
        "volumes": "Volumes and tone",
        "topic": "Topic",
        "mentions": "Mentions",
        "previous": "Previous period",
        "change": "Change",
        "negative": "Negative share",
        "negative_was": "before: {share}",
        "new": "new",
        "chart_alt": "Volume of mentions of “{topic}”",
        "stories": "Top stories of the period",
        "no_stories": "No mentions in the period.",
        "story_meta": "{source} · {sources} · {mentions}",
        "sources_n": "{n} source(s)",
        "mentions_n": "{n} mention(s)",
        "major": "major outlet",
        "failed": "Sources that failed",
        "no_failed": "No source failed during the period.",
        "failures": "{failures} failure(s) in {runs} run(s)",
        "still_failing": "still failing",
        "recovered": "recovered since",
        "alerts": "Alerts of the period",
        "no_alerts": "No alert during the period.",
        "opened": "opened {moment}",
        "resolved": "resolved {moment}",
        "acked": "acknowledged by {by} on {moment}",
        "not_acked": "nobody acknowledged it",
        "footer": "Digest sent by Vigie to the crisis cell of {org}.",
    },
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
    return f"{share * 100:.0f} %" if language == "fr" else f"{share * 100:.0f}%"


def _change(volume: TopicVolume, language: str) -> str:
    pct = volume.change_pct
    if pct is None:
        return DIGEST_TEXT[language]["new"] if volume.mentions else "—"
    return f"{pct:+.0f} %" if language == "fr" else f"{pct:+.0f}%"


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


# Inline CSS only: many mail clients drop <style> blocks and never load remote stylesheets.
_BODY = (
    "font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.4;color:#222;"
    "max-width:680px"
)
_H2 = "font-size:20px;margin:0 0 4px 0"
_H3 = "font-size:16px;margin:20px 0 6px 0;border-bottom:1px solid #ccc;padding-bottom:2px"
_TABLE = "border-collapse:collapse;font-size:14px"
_TH = "text-align:left;padding:4px 8px;border-bottom:2px solid #ccc"
_TD = "padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top"
_NUM = _TD + ";text-align:right"
_SMALL = "color:#666;font-size:12px"


def _clean(value: str | None, max_chars: int = MAX_TITLE) -> str:
    """One line of untrusted text: control characters out, whitespace collapsed, bounded."""
    return header_safe(value or "", max_chars)


def render_digest(digest: Digest, settings: Settings) -> OutboxMessage:
    """The digest as one outbox message for the whole cell (HTML, plain text, charts)."""
    language = settings.organisation.language
    text = DIGEST_TEXT[language]
    zone = ZoneInfo(settings.organisation.timezone)
    org = _clean(settings.organisation.name)
    e = html.escape
    colon = " : " if language == "fr" else ": "  # French typography: a space before the colon

    def moment(value: datetime) -> str:
        return format_moment(value, language, zone)

    span = text["span"].format(
        start=moment(digest.start),
        end=moment(digest.end),
        zone=settings.organisation.timezone,
        length=text[f"length_{digest.period}"],
    )
    heading = f"{text[f'heading_{digest.period}']} — {org}"
    html_parts: list[str] = [
        f'<html><head><meta charset="utf-8"></head><body style="{_BODY}">',
        f'<h2 style="{_H2}">{e(heading)}</h2>',
        f'<p style="{_SMALL}">{e(span)}</p>',
        f'<h3 style="{_H3}">{e(text["volumes"])}</h3>',
        f'<table style="{_TABLE}"><tr>',
        *(
            f'<th style="{_TH}">{e(text[key])}</th>'
            for key in ("topic", "mentions", "previous", "change", "negative")
        ),
        "</tr>",
    ]
    plain: list[str] = [heading, "=" * len(heading), span, "", text["volumes"], "-" * 20]
    for volume in digest.topics:
        share = _share(volume.negative_share, language)
        was = text["negative_was"].format(share=_share(volume.previous_negative_share, language))
        html_parts.append(
            f'<tr><td style="{_TD}"><strong>{e(volume.topic)}</strong></td>'
            f'<td style="{_NUM}">{volume.mentions}</td>'
            f'<td style="{_NUM}">{volume.previous}</td>'
            f'<td style="{_NUM}">{e(_change(volume, language))}</td>'
            f'<td style="{_NUM}">{e(share)} <span style="{_SMALL}">({e(was)})</span></td></tr>'
        )
        plain.append(
            f"- {volume.topic}{colon}{volume.mentions} {text['mentions'].lower()} "
            f"({text['previous'].lower()}{colon}{volume.previous}, {_change(volume, language)}); "
            f"{text['negative'].lower()} {share} ({was})"
        )
    html_parts.append("</table>")
    for volume in digest.topics:
        if volume.chart is not None:
            alt = text["chart_alt"].format(topic=volume.topic)
            html_parts.append(
                f'<p><img src="cid:{e(volume.chart.cid, quote=True)}" width="600" '
                f'height="220" alt="{e(alt, quote=True)}" '
                'style="display:block;max-width:100%;height:auto;border:0"></p>'
            )

    html_parts.append(f'<h3 style="{_H3}">{e(text["stories"])}</h3>')
    plain += ["", text["stories"], "-" * 20]
    if digest.stories:
        html_parts.append('<ol style="padding-left:20px">')
        for story in digest.stories:
            title = _clean(story.title)
            href = _safe_href(story.url)
            link = f'<a href="{href}" style="color:#1a4f8b">{e(title)}</a>' if href else e(title)
            meta = text["story_meta"].format(
                source=_clean(story.source, 120),
                sources=text["sources_n"].format(n=story.sources),
                mentions=text["mentions_n"].format(n=story.mentions),
            )
            if story.tier == 1:
                meta += f" · {text['major']}"
            meta += f" · {moment(story.first_published_at)}"
            html_parts.append(
                f'<li style="margin-bottom:6px">{link}<br>'
                f'<span style="{_SMALL}">{e(meta)}</span></li>'
            )
            plain.append(f"- {title}")
            plain.append(f"  {meta}")
            if href:
                plain.append(f"  {_clean(story.url, 2000)}")
        html_parts.append("</ol>")
    else:
        html_parts.append(f"<p>{e(text['no_stories'])}</p>")
        plain.append(text["no_stories"])

    html_parts.append(f'<h3 style="{_H3}">{e(text["failed"])}</h3>')
    plain += ["", text["failed"], "-" * 20]
    if digest.failed_sources:
        html_parts.append('<ul style="padding-left:20px">')
        for failed in digest.failed_sources:
            parts = []
            if failed.failures:
                parts.append(text["failures"].format(failures=failed.failures, runs=failed.runs))
                if failed.still_failing:
                    parts.append(text["still_failing"])
            health = HEALTH_NAMES[language].get(failed.health, failed.health)
            if health:
                parts.append(health)
            error = _clean(failed.last_error, MAX_ERROR)
            html_parts.append(
                f"<li><strong>{e(_clean(failed.source, 120))}</strong> — {e(', '.join(parts))}"
                + (f'<br><span style="{_SMALL}">{e(error)}</span>' if error else "")
                + "</li>"
            )
            plain.append(f"- {_clean(failed.source, 120)}{colon}{', '.join(parts)}")
            if error:
                plain.append(f"  {error}")
        html_parts.append("</ul>")
    else:
        html_parts.append(f"<p>{e(text['no_failed'])}</p>")
        plain.append(text["no_failed"])

    html_parts.append(f'<h3 style="{_H3}">{e(text["alerts"])}</h3>')
    plain += ["", text["alerts"], "-" * 20]
    if digest.alerts:
        html_parts.append('<ul style="padding-left:20px">')
        for alert in digest.alerts:
            level = LEVEL_NAMES[language].get(alert.level, alert.level.upper())
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
            summary = f"[{level}] {alert.topic} — {status}"
            html_parts.append(
                f"<li><strong>{e(summary)}</strong><br>"
                f'<span style="{_SMALL}">{e(alert.alert_id)} · {e("; ".join(facts))}</span></li>'
            )
            plain.append(f"- {summary} ({alert.alert_id})")
            plain.append(f"  {'; '.join(facts)}")
        html_parts.append("</ul>")
    else:
        html_parts.append(f"<p>{e(text['no_alerts'])}</p>")
        plain.append(text["no_alerts"])

    footer = text["footer"].format(org=org)
    html_parts.append(f'<p style="{_SMALL};margin-top:24px">{e(footer)}</p></body></html>')
    plain += ["", "--", footer]
    return OutboxMessage(
        message_id=message_id(digest),
        kind="digest",
        recipients=cell_recipients(settings),
        subject=digest_subject(digest, settings),
        html="".join(html_parts),
        text="\n".join(plain) + "\n",
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
