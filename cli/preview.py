"""Email previews (`vigie preview`): each email the cell or a team receives, rendered by the
real renderers into one HTML file that displays standalone, before anything is sent.

The message is built exactly as the flows build it (`tasks.notify.emails.alert_message` with the
chart of `tasks.notify.chart.alert_chart`, `tasks.notify.digest.build_digest` + `render_digest`,
`tasks.notify.readiness.render_readiness`) and turned into MIME by the sender's own
`tasks.notify.delivery.compose_email`; the page shows that MIME: subject, from, to, date, the HTML
part with its inline charts as data: URIs, and the plain-text part. Nothing is sent or queued: the
configured warehouse is only ever opened read-only, and the sample lives in memory
(`cli.preview_sample`).

Data: the stored data when the warehouse has some (the latest alert, the digest of the period
that just ended), else the built-in sample; `stored` insists on stored data, `sample` on the
sample. A readiness reminder holds no stored data: it shows the configured cell to a configured
team (a sample team when none is configured, or with `sample`).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, cast

from cli.preview_kinds import Kind
from cli.preview_sample import sample_warehouse
from tasks.detect.signals import CRISIS_LEXICON, Level, Severity, assess_severity
from tasks.notify.chart import alert_chart
from tasks.notify.delivery import compose_email
from tasks.notify.digest import Period, build_digest, default_end, render_digest
from tasks.notify.emails import alert_message
from vigie.errors import VigieError
from vigie.models import OutboxMessage, VolumeSignal
from vigie.query import fold
from vigie.settings import Language, Settings, Team
from warehouse.mention_texts import stored_mention_count
from warehouse.preview import AlertRecord, latest_alert, read_only_warehouse
from warehouse.store import Store, StoredAlert

# The notices previewed on sample data only (nothing stored says what they would hold).
SAMPLE_ONLY: tuple[Kind, ...] = ("source-health", "watchdog", "drill-report")
DataChoice = Literal["auto", "stored", "sample"]
OUTPUT_FOLDER = "vigie-preview"
# The team of a readiness preview when none is configured (or with --sample).
SAMPLE_TEAM = {
    "fr": ("Service à la clientèle (exemple)", "service-clientele@example.org"),
    "en": ("Customer service (sample)", "customer-service@example.org"),
}
PAGE_TEXT = {
    "fr": {
        "title": "Aperçu",
        "banner": "Aperçu — rien n’a été envoyé ni mis en file d’attente.",
        "data": "Données : {data}.",
        "stored": "réelles, lues dans l’entrepôt",
        "sample": "d’exemple (fictives)",
        "configuration": "la cellule et l’équipe de la configuration",
        "sample_team": "la cellule de la configuration, une équipe d’exemple",
        "subject": "Objet",
        "from": "De",
        "to": "À",
        "date": "Date",
        "drill": "Exercice",
        "nobody": "(personne : la cellule n’a pas de membre)",
        "plain": "Version texte (pour les messageries sans HTML)",
    },
    "en": {
        "title": "Preview",
        "banner": "Preview — nothing was sent or queued.",
        "data": "Data: {data}.",
        "stored": "real, read from the warehouse",
        "sample": "sample (fictional)",
        "configuration": "the cell and the team of the configuration",
        "sample_team": "the cell of the configuration, a sample team",
        "subject": "Subject",
        "from": "From",
        "to": "To",
        "date": "Date",
        "drill": "Drill",
        "nobody": "(nobody: the cell has no members)",
        "plain": "Plain-text part (for mail readers without HTML)",
    },
}
_FIGURE = r"\b{name}[ =](-?\d+(?:\.\d+)?)"

Data = Literal["stored", "sample", "configuration", "sample_team"]


@dataclass(frozen=True, slots=True)
class Preview:
    """One email ready to be shown: the message, its language, and which data it holds."""

    kind: Kind
    language: Language
    message: OutboxMessage
    data: Data
    detail: str  # the data used, for the command's line: "stored data (alert ...)"


def with_language(settings: Settings, language: Language | None) -> Settings:
    """The settings with the organisation's language replaced (emails follow it)."""
    if language is None:
        return settings
    organisation = settings.organisation.model_copy(update={"language": language})
    return settings.model_copy(update={"organisation": organisation})


def _figure(reason: str, name: str) -> float:
    """A figure of the alert's reason line (`tasks.detect.volume.alert_reason`): the alerts table
    keeps the window's spread and z only there."""
    match = re.search(_FIGURE.format(name=re.escape(name)), reason)
    return float(match.group(1)) if match else 0.0


def stored_alert_message(store: Store, settings: Settings, alert: AlertRecord) -> OutboxMessage:
    """The email that opened `alert`, rebuilt from the warehouse as the watch cycle builds it
    (`tasks.notify.alerts.raise_alerts`), with today's configuration (cell, charter, language)."""
    signal = VolumeSignal(
        alert.topic,
        alert.window_start,
        alert.window_end,
        alert.mentions_in_window,
        alert.baseline,
        _figure(alert.reason, "spread"),
        alert.score,
        _figure(alert.reason, "z"),
        True,
    )
    severity = None
    if alert.severity is not None:
        # The evidence (crisis terms, major outlets) is not stored: it is read again from the
        # window's mentions; the score and its contributions are the stored ones.
        mentions, _ = store.window_mentions(
            alert.topic, start=alert.window_start, end=alert.window_end
        )
        detection = settings.detection
        lexicon = {**CRISIS_LEXICON, **{fold(k): v for k, v in detection.vocabulary.items()}}
        evidence = assess_severity(
            mentions,
            volume_score=1.0,
            enough_volume=True,
            baseline_negative_share=0.0,
            lexicon=lexicon,
        ).evidence
        severity = Severity(alert.severity, cast(Level, alert.level), alert.contributions, evidence)
    language = settings.organisation.language
    chart = alert_chart(
        store,
        alert.topic,
        end=alert.window_end,
        marker=alert.opened_at,
        language=language,
        tz=settings.organisation.timezone,
        label=settings.watch_label(alert.topic),
    )
    return alert_message(
        settings,
        alert_id=alert.alert_id,
        signal=signal,
        level=alert.level,
        top_mentions=store.top_mentions(
            alert.topic, start=alert.window_start, end=alert.window_end
        ),
        run_url=None,
        severity=severity,
        chart=chart,
        drill=alert.drill,
    )


@contextmanager
def _stored(settings: Settings) -> Iterator[Store | None]:
    """The configured warehouse read-only, or None when there is no file yet."""
    path = settings.warehouse_path
    if not path.exists():
        yield None
        return
    with read_only_warehouse(path) as store:
        yield store


# What a stored preview found: the message and the data it holds, or None (nothing stored).
Found = tuple[OutboxMessage, str] | None


def _stored_or_sample(
    settings: Settings,
    kind: Kind,
    *,
    data: DataChoice,
    now: datetime,
    render: Callable[[Store], Found],
    missing: str,
) -> Preview:
    """`render` over the configured warehouse (read-only) when it finds something there and
    `data` allows it, else over the sample."""
    language = settings.organisation.language
    if data != "sample":
        with _stored(settings) as store:
            found = render(store) if store is not None else None
            if found is not None:
                return Preview(kind, language, found[0], "stored", found[1])
        if data == "stored":
            raise VigieError(
                f"no {missing} stored in {settings.warehouse_path}: run the watch first "
                "(vigie run --once), or preview with --sample"
            )
    with sample_warehouse(settings, now=now) as sample:
        found = render(sample)
    assert found is not None  # the sample holds mentions and an alert
    why = "--sample" if data == "sample" else f"no {missing} stored yet"
    return Preview(kind, language, found[0], "sample", f"sample data (a fictional crisis; {why})")


def preview_alert(settings: Settings, *, data: DataChoice, now: datetime) -> Preview:
    """The email of the latest alert (stored), else of the sample's alert."""

    def render(store: Store) -> Found:
        alert = latest_alert(store)
        if alert is None:
            return None
        detail = (
            f"stored data (alert {alert.alert_id} on {alert.topic!r}, opened "
            f"{alert.opened_at:%Y-%m-%d %H:%M} UTC)"
        )
        return stored_alert_message(store, settings, alert), detail

    return _stored_or_sample(settings, "alert", data=data, now=now, render=render, missing="alert")


def stored_escalation_message(
    store: Store, settings: Settings, alert: AlertRecord
) -> OutboxMessage:
    """The email that would pass `alert` from the first level of the cell to the next one
    nobody took charge of it (`tasks.notify.escalation.escalation_message`); with a cell of one
    level, to that level again, so that there is something to show."""
    from tasks.notify.escalation import Paging, escalation_message, next_level

    members = settings.cell.members
    first = min((m.level for m in members), default=1)
    to_level = next_level(members, first) or first
    paging = Paging(
        alert.alert_id,
        first,
        to_level,
        tuple(m.email for m in settings.level_members(to_level)),
    )
    stored = StoredAlert(
        alert.alert_id,
        alert.topic,
        alert.level,
        "open",
        alert.opened_at,
        alert.mentions_in_window,
        alert.severity,
    )
    return escalation_message(
        settings,
        stored,
        paging,
        reason=alert.reason,
        top_mentions=store.top_mentions(
            alert.topic, start=alert.window_start, end=alert.window_end, limit=5
        ),
        told=settings.level_members(first),
    )


def preview_escalation(settings: Settings, *, data: DataChoice, now: datetime) -> Preview:
    """The escalation email of the latest alert (stored), else of the sample's alert."""

    def render(store: Store) -> Found:
        alert = latest_alert(store)
        if alert is None:
            return None
        detail = f"stored data (alert {alert.alert_id} on {alert.topic!r}, not taken in charge)"
        return stored_escalation_message(store, settings, alert), detail

    return _stored_or_sample(
        settings, "escalation", data=data, now=now, render=render, missing="alert"
    )


def incident_preview_message(
    store: Store, settings: Settings, kind: Kind, *, now: datetime
) -> tuple[OutboxMessage, str] | None:
    """A situation report or the final report (`tasks.notify.incident`) of the latest stored
    incident: its last situation report (the first when none was sent yet), its report as it
    would close now when still running. Without an incident, an incident started at the latest
    alert (as the cell would start it), reported up to now. None without either."""
    # Imported here: tasks.notify.incident brings Prefect (about 3 s of start-up).
    from tasks.notify.incident import (
        build_report,
        build_sitrep,
        incident_recipients,
        incident_topic,
        render_report,
        render_sitrep,
    )
    from warehouse.store import IncidentStore, StoredIncident

    incidents = IncidentStore(store.con)
    latest = incidents.incidents(limit=1)
    if latest:
        incident = latest[0]
        detail = f"stored data (incident {incident.incident_id} {incident.name!r})"
    else:
        alert = latest_alert(store)
        if alert is None:
            return None
        # Started as the cell would: when the alert came, its hour of mentions just before.
        started = alert.opened_at - timedelta(minutes=45)
        incident = StoredIncident(
            f"inc-{started:%Y%m%d%H%M}-preview",
            alert.topic,
            {"extra_queries": [], "sitrep_every_minutes": 60, "extra_recipients": []},
            None,
            started,
            started + timedelta(hours=24),
            None,
            "running",
            1,
            None,
            None,
            None,
        )
        detail = f"stored data (an incident started at alert {alert.alert_id} on {alert.topic!r})"
    parameters = incident.parameters
    every = timedelta(minutes=float(parameters.get("sitrep_every_minutes") or 60))
    extra = [
        incident_topic(incident.name, n)
        for n in range(1, len(parameters.get("extra_queries") or []) + 1)
    ]
    recipients = incident_recipients(
        settings, [str(a) for a in parameters.get("extra_recipients") or []]
    )
    end = incident.ended_at or max(now, incident.started_at)
    if kind == "sitrep":
        number = max(1, incident.sitreps)
        start = incident.started_at + every * (number - 1)
        sitrep = build_sitrep(
            incidents,
            settings,
            incident,
            number=number,
            start=start,
            end=max(start, min(end, start + every)),
            extra_topics=extra,
        )
        return render_sitrep(sitrep, settings, recipients)[0], detail
    status = incident.status if incident.status != "running" else "ended"
    report = build_report(
        incidents,
        settings,
        incident,
        status=status,
        ended_at=end,
        extra_topics=extra,
        interval=every,
    )
    return render_report(report, settings, recipients)[0], detail


def preview_incident(settings: Settings, kind: Kind, *, data: DataChoice, now: datetime) -> Preview:
    """A situation report or the final report of the latest incident (stored), else of an
    incident about the latest alert (stored, then the sample's)."""

    def render(store: Store) -> Found:
        return incident_preview_message(store, settings, kind, now=now)

    return _stored_or_sample(settings, kind, data=data, now=now, render=render, missing="alert")


def preview_digest(
    settings: Settings, *, data: DataChoice, period: Period, now: datetime
) -> Preview:
    """The digest of the period that just ended (stored), else of the sample's period."""
    end = default_end(now, settings.organisation.timezone)

    def render(store: Store) -> Found:
        if not stored_mention_count(store, drills=False):
            return None
        digest = build_digest(store, settings, period=period, end=end)
        detail = (
            f"stored data (the {period} period from {digest.start:%Y-%m-%d %H:%M} to "
            f"{digest.end:%Y-%m-%d %H:%M} UTC)"
        )
        return render_digest(digest, settings), detail

    return _stored_or_sample(
        settings, "digest", data=data, now=now, render=render, missing="mention"
    )


def preview_readiness(
    settings: Settings, *, data: DataChoice, team: str | None, now: datetime
) -> Preview:
    """The readiness reminder of a configured team (the first, or `team`), else a sample
    team's; the cell is always the configured one."""
    # Imported here: tasks.notify.readiness brings Prefect (through tasks.load), which the other
    # previews do not need (about 3 s of start-up).
    from tasks.notify.readiness import render_readiness, select_teams

    if data != "sample" and (settings.teams or team is not None):
        chosen = select_teams(settings, team)[0]
        message = render_readiness(settings, chosen, now=now)
        detail = f"the configured cell and team {chosen.name!r}"
        return Preview(
            "readiness", settings.team_language(chosen), message, "configuration", detail
        )
    if data == "stored":
        raise VigieError(
            "no team is configured ([[teams]] in the configuration): add one, or preview "
            "with --sample"
        )
    language = settings.organisation.language
    name, address = SAMPLE_TEAM[language]
    sample = Team(name=name, emails=(address,))
    message = render_readiness(settings, sample, now=now)
    why = "--sample" if data == "sample" else "no team configured"
    detail = f"the configured cell and a sample team ({why})"
    return Preview("readiness", language, message, "sample_team", detail)


def preview_notice(settings: Settings, kind: Kind, *, now: datetime) -> Preview:
    """A notice on sample data: sources that stopped, a watch stopped for a day, a drill."""
    from cli.preview_sample import sample_drill_record, sample_health_changes
    from cli.watchdog import WatchState, watchdog_notices
    from tasks.notify.drill import drill_report_message
    from tasks.notify.emails import source_health_notice

    if kind == "source-health":
        message = source_health_notice(settings, sample_health_changes(now), now=now)
    elif kind == "watchdog":
        state = WatchState(now, timedelta(minutes=30), "sample", now - timedelta(hours=26))
        notices = watchdog_notices(settings, state, None)
        if not notices:
            raise VigieError(
                "the watchdog's notice goes to the cell's operators, else its first level, and "
                "the cell has no members: add [[cell.members]]"
            )
        message = notices[0]
    else:
        message = drill_report_message(settings, sample_drill_record(now))
    language = settings.organisation.language
    return Preview(kind, language, message, "sample", "sample data (a fictional case)")


def make_preview(
    settings: Settings,
    kind: Kind,
    *,
    data: DataChoice = "auto",
    language: Language | None = None,
    team: str | None = None,
    period: Period = "daily",
    now: datetime,
) -> Preview:
    """The preview of one kind of email; `language` overrides the one the real send uses.

    Raises:
        VigieError: `stored` data was asked for and there is none, or the warehouse cannot
            be read.
        ConfigError: `team` names no configured team.
    """
    if kind == "alert":
        return preview_alert(with_language(settings, language), data=data, now=now)
    if kind == "escalation":
        return preview_escalation(with_language(settings, language), data=data, now=now)
    if kind in ("sitrep", "incident-report"):
        return preview_incident(with_language(settings, language), kind, data=data, now=now)
    if kind in SAMPLE_ONLY:
        if data == "stored":
            raise VigieError(f"a {kind} preview holds sample data only: leave out --stored")
        return preview_notice(with_language(settings, language), kind, now=now)
    if kind == "digest":
        return preview_digest(with_language(settings, language), data=data, period=period, now=now)
    if language is not None:
        teams = tuple(t.model_copy(update={"language": language}) for t in settings.teams)
        settings = with_language(settings, language).model_copy(update={"teams": teams})
    return preview_readiness(settings, data=data, team=team, now=now)


def _inner_body(document: str) -> tuple[str, str]:
    """The attributes and content of an HTML document's <body> (the whole text without one).

    Mail readers show an email's body inside their own page, as this does.
    """
    match = re.search(r"(?is)<body([^>]*)>(.*)</body>", document)
    return (match.group(1), match.group(2)) if match else ("", document)


def preview_page(preview: Preview, settings: Settings, *, now: datetime) -> str:
    """The standalone HTML page showing the email as its recipients get it."""
    text = PAGE_TEXT[preview.language]
    email = settings.email
    mime = compose_email(
        preview.message, sender=email.sender, sender_name=email.sender_name, now=now
    )
    html_part = mime.get_body(preferencelist=("html",))
    plain_part = mime.get_body(preferencelist=("plain",))
    assert html_part is not None and plain_part is not None  # compose_email adds both
    body = str(html_part.get_content())
    for part in mime.walk():
        if part.get_content_maintype() == "image":
            cid = str(part["Content-ID"]).strip("<>")
            png = base64.b64encode(part.get_content()).decode("ascii")
            body = body.replace(
                f'src="cid:{html.escape(cid)}"', f'src="data:image/png;base64,{png}"'
            )
    attributes, content = _inner_body(body)
    e = html.escape
    rows = [
        (text["subject"], str(mime["Subject"])),
        (text["from"], str(mime["From"])),
        (text["to"], str(mime["To"]) or text["nobody"]),
        (text["date"], str(mime["Date"])),
    ]
    if preview.message.drill:
        rows.append((text["drill"], "X-Vigie-Drill: yes"))
    headers = "".join(
        f'<tr><th style="text-align:left;padding:2px 12px 2px 0;color:#57606a">{e(name)}</th>'
        f"<td>{e(value)}</td></tr>"
        for name, value in rows
    )
    data = text["data"].format(data=text[preview.data])
    return (
        f'<!DOCTYPE html><html lang="{preview.language}"><head><meta charset="utf-8">'
        f"<title>{e(text['title'])} — {e(str(mime['Subject']))}</title></head>"
        '<body style="margin:0;background:#eef1f4;font-family:Arial,Helvetica,sans-serif">'
        '<div style="background:#0b3d5c;color:#fff;padding:10px 16px;font-size:14px">'
        f"<strong>{e(text['banner'])}</strong> {e(data)}</div>"
        '<div style="max-width:760px;margin:16px auto;background:#fff;border:1px solid #d0d7de">'
        '<table style="font-size:14px;margin:12px 16px;border-collapse:collapse">'
        f'{headers}</table><hr style="border:0;border-top:1px solid #d0d7de;margin:0">'
        f'<div style="padding:0 16px 16px"><div class="email"{attributes}>{content}</div></div>'
        "</div>"
        '<div style="max-width:760px;margin:16px auto">'
        f'<h2 style="font-size:16px;color:#0b3d5c">{e(text["plain"])}</h2>'
        '<pre style="white-space:pre-wrap;background:#fff;border:1px solid #d0d7de;'
        f'padding:12px;font-size:13px">{e(str(plain_part.get_content()))}</pre></div>'
        "</body></html>"
    )


def output_path(
    settings: Settings, preview: Preview, output: str | None, period: Period = "daily"
) -> Path:
    """Where the page goes, absolute: `output` (inside it when it is a folder), by default
    `vigie-preview/<kind>-<language>.html` beside the configuration file."""
    name = preview.kind if period == "daily" or preview.kind != "digest" else "digest-weekly"
    filename = f"{name}-{preview.language}.html"
    if output is None:
        return settings.config_path.resolve().parent / OUTPUT_FOLDER / filename
    path = Path(output).expanduser()
    return (path / filename if path.is_dir() else path).resolve()


def write_preview(page: str, path: Path) -> Path:
    """Write the page (creating its folder); returns its absolute path.

    Raises:
        VigieError: the file cannot be written.
    """
    path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        raise VigieError(f"cannot write the preview to {path}: {err.strerror}") from err
    return path
