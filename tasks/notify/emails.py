"""Notification: render emails into the outbox, then hand the outbox to SMTP with yagmail.

Emails are never sent straight from detection. They are rendered into the `outbox` table in the
same transaction that opens the alert, with a deterministic id; `tasks.notify.delivery` sends each
pending row exactly once (claimed before SMTP, marked sent at once), holds what may wait and
retries what the server refused.
Everything that came from a feed is HTML-escaped; headers are stripped of control characters.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import smtplib
import socket
import ssl
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yagmail

from tasks.detect.breaking import StoryAssessment
from tasks.detect.signals import Severity
from tasks.notify.failures import read_failure
from vigie.models import HealthChange, InlineImage, OutboxMessage, VolumeSignal
from vigie.settings import Email, Member, Secrets, Settings

MAX_SUBJECT_CHARS = 200

LEVEL_NAMES = {
    "fr": {"veille": "VEILLE", "vigilance": "VIGILANCE", "alerte": "ALERTE", "crise": "CRISE"},
    "en": {"veille": "WATCH", "vigilance": "WARNING", "alerte": "ALERT", "crise": "CRISIS"},
}
ROLE_NAMES = {
    "fr": {
        "lead": "responsable de la cellule",
        "spokesperson": "porte-parole",
        "legal": "juridique",
        "communications": "communications",
        "social_media": "médias sociaux",
        "executive": "direction",
        "operator": "opérateur",
    },
    "en": {
        "lead": "cell lead",
        "spokesperson": "spokesperson",
        "legal": "legal counsel",
        "communications": "communications",
        "social_media": "social media",
        "executive": "executive",
        "operator": "operator",
    },
}
TEXT = {
    "fr": {
        "subject": (
            "[Vigie][{level}] {org} : pic de mentions « {topic} » ({count} en {minutes} min)"
        ),
        "heading": "Pic de mentions pour « {topic} »",
        "why": (
            "{count} mentions entre {start} et {end}, contre une médiane de {median:g} par "
            "fenêtre de {minutes} min sur la période précédente (écart {z:.1f} fois la "
            "dispersion habituelle ; score {score:.2f})."
        ),
        "top": "Principales mentions de la fenêtre",
        "copies": "{n} reprises",
        "on_duty": "Cellule de crise : premier niveau d’escalade",
        "authorised": "autorisé·e à répondre sur : {platforms}",
        "not_authorised": "n’est autorisé·e à répondre sur aucune plateforme",
        "charter": (
            "Rappel : ne répondez au nom de l’organisation que si vous y êtes autorisé·e ; "
            "transmettez tout élément nouveau à la cellule."
        ),
        "rules": "Charte d’engagement",
        "run": "Voir le cycle de veille dans Prefect",
        "footer": "Alerte {alert_id} envoyée par Vigie.",
        "ack": ('Prendre en charge (arrête l’escalade) : vigie ack {alert_id} --by "Votre nom"'),
        "ack_link": "Prendre en charge dans Prefect (votre nom dans le formulaire)",
        "chart": "Mentions par heure sur 48 h ; le trait rouge marque l’alerte",
        "drill": "EXERCICE — ceci n’est pas une vraie crise. Répondez comme si c’en était une.",
        "drill_tag": "[EXERCICE]",
        "story_subject": (
            "[Vigie][{level}] {org} : une histoire se propage vite « {title} » "
            "({count} sources en {minutes} min)"
        ),
        "story_heading": "Une histoire se propage vite (« {topic} ») : {title}",
        "story_why": (
            "{count} sources distinctes ont repris cette histoire entre {start} et {end}, "
            "alors que les histoires de « {topic} » atteignent d’habitude {usual:g} source(s) "
            "en {minutes} min (seuil : {needed:g})."
        ),
        "story_outlets": "Sources qui l’ont reprise, dans l’ordre",
    },
    "en": {
        "subject": (
            "[Vigie][{level}] {org}: spike in mentions of “{topic}” ({count} in {minutes} min)"
        ),
        "heading": "Spike in mentions of “{topic}”",
        "why": (
            "{count} mentions between {start} and {end}, against a median of {median:g} per "
            "{minutes}-minute window before (a deviation of {z:.1f} times the usual spread; "
            "score {score:.2f})."
        ),
        "top": "Top mentions of the window",
        "copies": "{n} copies",
        "on_duty": "Crisis cell: first escalation level",
        "authorised": "authorised to answer on: {platforms}",
        "not_authorised": "not authorised to answer on any platform",
        "charter": (
            "Reminder: only answer in the organisation's name if you are authorised to; "
            "forward anything new to the cell."
        ),
        "rules": "Rules of engagement (charter)",
        "run": "See the watch cycle in Prefect",
        "footer": "Alert {alert_id} sent by Vigie.",
        "ack": 'Take charge (stops the escalation): vigie ack {alert_id} --by "Your name"',
        "ack_link": "Take charge in Prefect (your name in the form)",
        "chart": "Mentions per hour over 48 h; the red line marks the alert",
        "drill": "DRILL — this is not a real crisis. Respond as if it were.",
        "drill_tag": "[DRILL]",
        "story_subject": (
            "[Vigie][{level}] {org}: a story is spreading fast “{title}” "
            "({count} sources in {minutes} min)"
        ),
        "story_heading": "A story is spreading fast (“{topic}”): {title}",
        "story_why": (
            "{count} distinct sources picked up this story between {start} and {end}, while "
            "stories of “{topic}” usually reach {usual:g} source(s) in {minutes} minutes "
            "(threshold: {needed:g})."
        ),
        "story_outlets": "Sources that picked it up, in order",
    },
}


def header_safe(value: str, max_chars: int = MAX_SUBJECT_CHARS) -> str:
    """A single-line header value: control characters (CR, LF, bidi overrides) become spaces."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in value
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= max_chars else cleaned[: max_chars - 1] + "…"


def _safe_href(url: str) -> str | None:
    return html.escape(url, quote=True) if url.lower().startswith(("http://", "https://")) else None


def _member_line(member: Member, language: str) -> str:
    text = TEXT[language]
    role = ROLE_NAMES[language].get(member.role, member.role)
    platforms = ", ".join(member.platforms)
    rights = text["authorised"].format(platforms=platforms) if platforms else text["not_authorised"]
    phone = f" · {html.escape(member.phone)}" if member.phone else ""
    return (
        f"<li><strong>{html.escape(member.name)}</strong> ({html.escape(role)}) — "
        f'<a href="mailto:{html.escape(member.email, quote=True)}">{html.escape(member.email)}</a>'
        f"{phone} — {html.escape(rights)}</li>"
    )


def render_alert_email(
    settings: Settings,
    *,
    alert_id: str,
    signal: VolumeSignal,
    level: str,
    top_mentions: Sequence[dict[str, Any]],
    run_url: str | None,
    severity: Severity | None = None,
    chart_cid: str | None = None,
    ack_url: str | None = None,
    drill: bool = False,
    story: StoryAssessment | None = None,
) -> tuple[str, str]:
    """The subject and HTML body of an alert, in the organisation's language.

    `chart_cid` names the inline volume chart, `ack_url` the Prefect run waiting for an
    acknowledgement; a `drill` is marked as an exercise in the subject and at the top. A
    breaking `story`'s alert names the story, links it and lists the sources that carried it.
    """
    language = settings.organisation.language
    text = TEXT[language]
    zone = ZoneInfo(settings.organisation.timezone)
    minutes = settings.detection.window_minutes

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    subject = header_safe(
        (text["drill_tag"] + " " if drill else "")
        + text["story_subject" if story else "subject"].format(
            level=LEVEL_NAMES[language][level],
            org=settings.organisation.name,
            topic=signal.topic,
            title=header_safe(story.title, 100) if story else "",
            count=signal.current,
            minutes=minutes,
        )
    )
    items = []
    for mention in top_mentions:
        title = html.escape(mention["title"])
        href = _safe_href(mention["url"])
        link = f'<a href="{href}">{title}</a>' if href else title
        copies = (
            " · " + html.escape(text["copies"].format(n=mention["copies"]))
            if mention["copies"] > 1
            else ""
        )
        items.append(
            f"<li>{link}<br><small>{html.escape(mention['source'])} · "
            f"{html.escape(local(mention['published_at']))}{copies}</small></li>"
        )
    members = "".join(_member_line(m, language) for m in settings.first_level)
    rules = "".join(f"<li>{html.escape(rule)}</li>" for rule in settings.cell.charter)
    charter = f"<h3>{html.escape(text['rules'])}</h3><ol>{rules}</ol>" if rules else ""
    run_link = (
        f'<p><a href="{_safe_href(run_url)}">{html.escape(text["run"])}</a></p>'
        if run_url and _safe_href(run_url)
        else ""
    )
    why = text["why"].format(
        count=signal.current,
        start=local(signal.window_start),
        end=local(signal.window_end),
        median=signal.baseline_median,
        minutes=minutes,
        z=signal.z,
        score=signal.score,
    )
    heading = text["heading"].format(topic=signal.topic)
    listed = f"<h3>{html.escape(text['top'])}</h3><ol>{''.join(items)}</ol>"
    if story:
        why = text["story_why"].format(
            count=story.sources,
            start=local(story.window_start),
            end=local(story.window_end),
            topic=story.topic,
            usual=story.usual_spread,
            needed=story.needed,
            minutes=minutes,
        )
        heading = text["story_heading"].format(topic=story.topic, title=story.title)
        story_href = _safe_href(story.url)
        outlets = []
        for source, url in story.outlets:
            href = _safe_href(url)
            name = html.escape(source)
            outlets.append(f'<li><a href="{href}">{name}</a></li>' if href else f"<li>{name}</li>")
        title = html.escape(story.title)
        named = f'<a href="{story_href}">{title}</a>' if story_href else title
        listed = (
            f"<p><strong>{named}</strong></p>"
            f"<h3>{html.escape(text['story_outlets'])}</h3><ol>{''.join(outlets)}</ol>"
        )
    chart = (
        f'<p><img src="cid:{html.escape(chart_cid)}" width="600" height="220" '
        f'alt="{html.escape(text["chart"])}"><br><small>{html.escape(text["chart"])}</small></p>'
        if chart_cid
        else ""
    )
    banner = (
        '<p style="background:#fff3cd;border:2px solid #c58a00;padding:8px;font-weight:bold">'
        f"{html.escape(text['drill'])}</p>"
        if drill
        else ""
    )
    ack_href = _safe_href(ack_url) if ack_url else None
    ack = (
        f'<p style="font-weight:bold">{html.escape(text["ack"].format(alert_id=alert_id))}'
        + (f'<br><a href="{ack_href}">{html.escape(text["ack_link"])}</a>' if ack_href else "")
        + "</p>"
    )
    body = (
        f'<html><body style="font-family:sans-serif">{banner}'
        f"<h2>{html.escape(LEVEL_NAMES[language][level])} — "
        f"{html.escape(heading)}</h2>"
        f"<p>{html.escape(settings.organisation.name)}</p>"
        f"{_severity_html(severity, language)}"
        f"<p>{html.escape(why)}</p>{chart}{ack}"
        f"{listed}"
        f"<h3>{html.escape(text['on_duty'])}</h3><ul>{members}</ul>"
        f"<p><em>{html.escape(text['charter'])}</em></p>"
        f"{charter}"
        f"{run_link}"
        f"<p><small>{html.escape(text['footer'].format(alert_id=alert_id))}</small></p>"
        f"</body></html>"
    )
    return subject, body


SIGNAL_NAMES = {
    "fr": {
        "volume": "volume inhabituel",
        "negativity": "hausse des mentions négatives",
        "vocabulary": "vocabulaire de crise",
        "pickup": "reprise par un média majeur",
        "spread": "propagation entre plateformes et sources",
        "breaking": "histoire reprise vite par de nombreuses sources",
        "severity": "Gravité {score:g}/100, dont :",
        "terms": "Termes de crise relevés : {terms}",
        "outlets": "Médias majeurs : {outlets}",
    },
    "en": {
        "volume": "unusual volume",
        "negativity": "rise in negative mentions",
        "vocabulary": "crisis vocabulary",
        "pickup": "pick-up by a major outlet",
        "spread": "spread across platforms and sources",
        "breaking": "story picked up fast by many sources",
        "severity": "Severity {score:g}/100, of which:",
        "terms": "Crisis terms found: {terms}",
        "outlets": "Major outlets: {outlets}",
    },
}


def _severity_html(severity: Severity | None, language: str) -> str:
    """Each signal's contribution to the severity, largest first, with its evidence."""
    if severity is None:
        return ""
    names = SIGNAL_NAMES[language]
    items = "".join(
        f"<li>{html.escape(names[name])} : {value:g}</li>"
        if language == "fr"
        else f"<li>{html.escape(names[name])}: {value:g}</li>"
        for name, value in sorted(severity.contributions.items(), key=lambda kv: -kv[1])
        if value > 0
    )
    extra = ""
    terms = severity.evidence.get("crisis_terms")
    if isinstance(terms, dict) and terms:
        listed = ", ".join(str(t).rstrip("*") for t in terms)
        extra += f"<p>{html.escape(names['terms'].format(terms=listed))}</p>"
    outlets = severity.evidence.get("major_outlets")
    if isinstance(outlets, list) and outlets:
        extra += f"<p>{html.escape(names['outlets'].format(outlets=', '.join(outlets)))}</p>"
    heading = html.escape(names["severity"].format(score=severity.score))
    return f"<p><strong>{heading}</strong></p><ul>{items}</ul>{extra}"


def alert_message(
    settings: Settings,
    *,
    alert_id: str,
    signal: VolumeSignal,
    level: str,
    top_mentions: Sequence[dict[str, Any]],
    run_url: str | None,
    severity: Severity | None = None,
    chart: InlineImage | None = None,
    ack_url: str | None = None,
    drill: bool = False,
    story: StoryAssessment | None = None,
) -> OutboxMessage:
    """The outbox row that tells the first escalation level an alert was opened."""
    subject, body = render_alert_email(
        settings,
        alert_id=alert_id,
        signal=signal,
        level=level,
        top_mentions=top_mentions,
        run_url=run_url,
        severity=severity,
        chart_cid=chart.cid if chart else None,
        ack_url=ack_url,
        drill=drill,
        story=story,
    )
    return OutboxMessage(
        message_id=f"{alert_id}.opened",
        kind="alert",
        recipients=tuple(m.email for m in settings.first_level),
        subject=subject,
        html=body,
        alert_id=alert_id,
        images=(chart,) if chart else (),
        critical=True,  # an alert never waits for quiet hours or a cap
        drill=drill,
    )


SmtpFactory = Callable[[Email, Secrets], Any]


def smtp_client(email: Email, secrets: Secrets) -> yagmail.SMTP:
    """A yagmail client for the configured server; certificates are always verified."""
    context = ssl.create_default_context(cafile=str(email.ca_file) if email.ca_file else None)
    options: dict[str, Any] = {
        "user": {email.sender: email.sender_name},
        "host": email.host,
        "port": email.port,
        "timeout": email.timeout_s,
        "smtp_ssl": email.security == "ssl",
        # yagmail's default STARTTLS does not verify the certificate (STACK.md gotcha 18).
        "smtp_starttls": {"context": context} if email.security == "starttls" else False,
    }
    if email.security == "ssl":
        options["context"] = context
    if email.username:
        password = secrets.smtp_password.get_secret_value() if secrets.smtp_password else ""
        options["password"] = password  # always explicit: yagmail would try a keyring
    else:
        options["smtp_skip_login"] = True
    return yagmail.SMTP(**options)


def _describe_smtp_error(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        detail = (
            err.smtp_error.decode("utf-8", "replace")
            if isinstance(err.smtp_error, bytes)
            else str(err.smtp_error)
        )
        return f"SMTP {err.smtp_code}: {header_safe(detail, 200)}"
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        # The server's answer for the first recipient says why (relay denied, unknown user).
        first = next(iter(err.recipients.values()), None)
        if first is None:
            return "every recipient was refused"
        code, answer = first
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
        return f"every recipient was refused (SMTP {code}: {header_safe(text, 200)})"
    return f"{type(err).__name__}: {header_safe(str(err), 200)}"


_SMTP_ERRORS = (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError)


def close_smtp(client: yagmail.SMTP | None) -> None:
    """End an SMTP conversation in whatever state it is (a server that dropped it included)."""
    if client is not None:
        with contextlib.suppress(*_SMTP_ERRORS, AttributeError):
            client.close()


QUALITY_TEXT = {
    "fr": {
        "degraded_subject": "[Vigie][QUALITÉ] Source dégradée : {source}",
        "recovered_subject": "[Vigie][QUALITÉ] Source rétablie : {source}",
        "degraded": (
            "{failed} des {total} mentions reçues de « {source} » ont échoué aux contrôles de "
            "qualité et ont été mises en quarantaine. La source est marquée dégradée ; vous ne "
            "recevrez pas d’autre avis avant son rétablissement."
        ),
        "recovered": "Les mentions de « {source} » passent de nouveau les contrôles de qualité.",
        "reasons": "Contrôles en échec",
    },
    "en": {
        "degraded_subject": "[Vigie][QUALITY] Source degraded: {source}",
        "recovered_subject": "[Vigie][QUALITY] Source recovered: {source}",
        "degraded": (
            "{failed} of the {total} mentions received from “{source}” failed the quality checks "
            "and were quarantined. The source is marked degraded; you will not be told again "
            "until it recovers."
        ),
        "recovered": "Mentions from “{source}” pass the quality checks again.",
        "reasons": "Failed checks",
    },
}


def quality_notice(
    settings: Settings,
    *,
    source: str,
    transition: str,
    failed: int,
    total: int,
    reasons: Sequence[str],
    now: datetime,
) -> OutboxMessage:
    """The operators' notice that a source became degraded or recovered (sent once each)."""
    language = settings.organisation.language
    text = QUALITY_TEXT[language]
    subject = header_safe(text[f"{transition}_subject"].format(source=source))
    body = html.escape(text[transition].format(source=source, failed=failed, total=total))
    items = "".join(f"<li>{html.escape(reason)}</li>" for reason in reasons)
    listing = (
        f"<h3>{html.escape(text['reasons'])}</h3><ul>{items}</ul>"
        if transition == "degraded" and items
        else ""
    )
    key = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    return OutboxMessage(
        message_id=f"quality.{transition}.{key}.{now:%Y%m%dT%H%M%S}",
        kind="quality",
        recipients=settings.source_notice_recipients,
        subject=subject,
        html=f'<html><body style="font-family:sans-serif"><p>{body}</p>{listing}</body></html>',
    )


HEALTH_TEXT: dict[str, dict[str, Any]] = {
    "fr": {
        # One source changed: the subject names it; "never" when it has never answered.
        "subject": {
            "failing": "[Vigie][SOURCE] Source en panne : {source}",
            "failing_never": "[Vigie][SOURCE] Source jamais collectée : {source}",
            "not_a_feed": "[Vigie][SOURCE] La source ne renvoie plus de flux : {source}",
            "not_a_feed_never": "[Vigie][SOURCE] La source ne renvoie pas de flux : {source}",
            "silent": "[Vigie][SOURCE] Source muette : {source}",
            "ok": "[Vigie][SOURCE] Source rétablie : {source}",
        },
        # Several: how many to check, how many recovered.
        "subject_many": "[Vigie][SOURCE] {parts}",
        "to_check": ("{n} source à vérifier", "{n} sources à vérifier"),
        "recovered": ("{n} source rétablie", "{n} sources rétablies"),
        "subject_network": "[Vigie][SOURCE] Pas de réseau ou de DNS : aucune source ne répond",
        "network": (
            "Pas de réseau ou de DNS : aucune source ne répond, toutes faute de connexion. "
            "Vérifiez d’abord la connexion du serveur de Vigie (réseau, DNS, pare-feu, proxy) "
            "plutôt que chaque source."
        ),
        "seen": "Constaté au cycle de veille du {when}.",
        "heading_problems": "Sources à vérifier",
        "heading_recovered": "Sources rétablies",
        "line": {
            "failing": "ne répond plus depuis le {last_ok} ({failures}) : {why}.",
            "failing_never": "n’a jamais répondu ({failures}) : {why}.",
            "not_a_feed": (
                "renvoie une page web au lieu d’un flux : son adresse a probablement changé."
            ),
            "not_a_feed_never": (
                "renvoie une page web au lieu d’un flux depuis le début : son adresse est "
                "sans doute erronée."
            ),
            "silent": (
                "ne publie plus rien : sa dernière entrée date de {age}, alors qu’elle publie "
                "d’habitude toutes les {gap}."
            ),
            "silent_failing": "ne publie plus rien, et sa dernière collecte a échoué : {why}.",
            "ok": "est maintenant collectée normalement.",
        },
        "failures": ("{n} cycle en échec", "{n} cycles en échec"),
        "why": {
            "html_page": "une page web au lieu d’un flux",
            "timeout": "le serveur ne répond pas dans le délai",
            "http_404": "la page n’existe pas ou plus (erreur {status})",
            "http_auth": "le serveur refuse l’accès (erreur {status})",
            "http_429": "le serveur limite le nombre de requêtes (erreur {status})",
            "http_5xx": "le serveur est en panne (erreur {status})",
            "http_other": "le serveur répond par une erreur (code {status})",
            "redirect": "redirection refusée (vers une adresse non web, un autre serveur, ou trop "
            "de redirections)",
            "dns": "le nom du serveur est introuvable (DNS)",
            "connection": "connexion impossible (refusée, ou serveur injoignable)",
            "parse": "le contenu reçu n’est pas un flux lisible",
            "too_large": "la réponse dépasse la taille permise",
            "other": "erreur de collecte",
        },
        "details": "Détail technique : {error}",
        "units": ("min", "h", "j"),
        "gap": (
            "Tant qu’une source n’est pas collectée, la veille a un angle mort : la détection ne "
            "prend pas ce trou pour du calme. Vous ne recevrez pas d’autre avis sur une source "
            "avant son rétablissement."
        ),
    },
    "en": {
        "subject": {
            "failing": "[Vigie][SOURCE] Source down: {source}",
            "failing_never": "[Vigie][SOURCE] Source never collected: {source}",
            "not_a_feed": "[Vigie][SOURCE] Source no longer returns a feed: {source}",
            "not_a_feed_never": "[Vigie][SOURCE] Source does not return a feed: {source}",
            "silent": "[Vigie][SOURCE] Source silent: {source}",
            "ok": "[Vigie][SOURCE] Source recovered: {source}",
        },
        "subject_many": "[Vigie][SOURCE] {parts}",
        "to_check": ("{n} source to check", "{n} sources to check"),
        "recovered": ("{n} source recovered", "{n} sources recovered"),
        "subject_network": "[Vigie][SOURCE] No network or DNS: no source answers",
        "network": (
            "No network or DNS: no source answers, every one for want of a connection. Check "
            "the network of the machine running Vigie first (network, DNS, firewall, proxy) "
            "rather than each source."
        ),
        "seen": "Found by the watch cycle of {when}.",
        "heading_problems": "Sources to check",
        "heading_recovered": "Sources recovered",
        "line": {
            "failing": "has stopped answering since {last_ok} ({failures}): {why}.",
            "failing_never": "has never answered ({failures}): {why}.",
            "not_a_feed": (
                "answers with a web page instead of a feed: its address has probably changed."
            ),
            "not_a_feed_never": (
                "has answered with a web page instead of a feed from the start: its address is "
                "probably wrong."
            ),
            "silent": (
                "has stopped publishing: its newest entry is {age} old, while it usually "
                "publishes every {gap}."
            ),
            "silent_failing": "has stopped publishing, and its last fetch failed: {why}.",
            "ok": "is now collected normally.",
        },
        "failures": ("{n} failed cycle", "{n} failed cycles"),
        "why": {
            "html_page": "a web page instead of a feed",
            "timeout": "the server does not answer in time",
            "http_404": "the page does not exist (any more) (error {status})",
            "http_auth": "the server refuses access (error {status})",
            "http_429": "the server limits the number of requests (error {status})",
            "http_5xx": "the server is failing (error {status})",
            "http_other": "the server answers with an error (code {status})",
            "redirect": "redirect refused (to a non-web address, another server, or too many "
            "redirects)",
            "dns": "the server's name cannot be found (DNS)",
            "connection": "cannot connect (refused, or server unreachable)",
            "parse": "what was received is not a readable feed",
            "too_large": "the answer is larger than allowed",
            "other": "collection error",
        },
        "details": "Technical details: {error}",
        "units": ("min", "h", "d"),
        "gap": (
            "While a source is not collected, the watch has a blind spot: detection does not "
            "read this gap as calm. You will not be told about a source again until it recovers."
        ),
    },
}


def _plural(forms: tuple[str, str], n: int) -> str:
    # French and English alike here: the singular for 1 (a count of 0 is never shown).
    return forms[0 if n == 1 else 1].format(n=n)


def _span(seconds: float, units: tuple[str, str, str]) -> str:
    minutes, hours, days = units
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} {days}"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} {hours}"
    return f"{max(seconds, 60) / 60:.0f} {minutes}"


def failure_words(error: str | None, language: str) -> str:
    """A recorded collection error said plainly in `language` (the kind of failure, not the
    technical text, which the notice keeps as a details line)."""
    failure = read_failure(error)
    words = HEALTH_TEXT[language]["why"]
    status = failure.http_status
    if status is None:
        return str(words[failure.kind if failure.kind != "http_status" else "other"])
    if status in (404, 410):
        key = "http_404"
    elif status in (401, 403, 407):
        key = "http_auth"
    elif status == 429:
        key = "http_429"
    elif status >= 500:
        key = "http_5xx"
    else:
        key = "http_other"
    return str(words[key]).format(status=status)


def _health_line(
    change: HealthChange, language: str, local: Callable[[datetime], str], now: datetime
) -> str:
    text = HEALTH_TEXT[language]
    condition = change.condition
    state = change.verdict.state
    never = condition.last_ok_at is None
    error = condition.last_error
    key: str = state
    if state in ("failing", "not_a_feed") and never:
        key = f"{state}_never"
    elif state == "silent" and condition.consecutive_failures:
        key = "silent_failing"
    age = (now - condition.newest_entry_at).total_seconds() if condition.newest_entry_at else 0.0
    sentence = text["line"][key].format(
        last_ok=local(condition.last_ok_at) if condition.last_ok_at else "",
        failures=_plural(text["failures"], condition.consecutive_failures),
        why=failure_words(error, language),
        age=_span(age, text["units"]),
        gap=_span(condition.entry_gap_s or 0.0, text["units"]),
    )
    details = (
        f"<br><small>{html.escape(text['details'].format(error=header_safe(error, 300)))}</small>"
        if error and state != "ok"
        else ""
    )
    return (
        f"<li><strong>{html.escape(change.source)}</strong> {html.escape(sentence)}{details}</li>"
    )


def source_health_notice(
    settings: Settings,
    changes: Sequence[HealthChange],
    *,
    now: datetime,
    network_down: bool = False,
) -> OutboxMessage:
    """The operators' one notice of a cycle: every source that stopped watching, or recovered.

    In the organisation's language and time zone; a source that has never answered is told
    apart from one that stopped; `network_down` (every source fails to connect) puts the
    machine's network first. The message id names the changes and the moment, so a rerun of
    the same cycle queues nothing new.
    """
    language = settings.organisation.language
    text = HEALTH_TEXT[language]
    zone = ZoneInfo(settings.organisation.timezone)

    def local(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    problems = [c for c in changes if c.verdict.state != "ok"]
    recovered = [c for c in changes if c.verdict.state == "ok"]
    if network_down:
        subject = text["subject_network"]
    elif len(changes) == 1:
        change = changes[0]
        state = change.verdict.state
        never = change.condition.last_ok_at is None and state in ("failing", "not_a_feed")
        subject = text["subject"][f"{state}_never" if never else state].format(source=change.source)
    else:
        parts = []
        if problems:
            parts.append(_plural(text["to_check"], len(problems)))
        if recovered:
            parts.append(_plural(text["recovered"], len(recovered)))
        subject = text["subject_many"].format(parts=", ".join(parts))
    body = ['<html><body style="font-family:sans-serif">']
    if network_down:
        body.append(f"<p><strong>{html.escape(text['network'])}</strong></p>")
    body.append(f"<p>{html.escape(text['seen'].format(when=local(now)))}</p>")
    for heading, group in (("heading_problems", problems), ("heading_recovered", recovered)):
        if group:
            items = "".join(_health_line(c, language, local, now) for c in group)
            body.append(f"<h3>{html.escape(text[heading])} ({len(group)})</h3><ul>{items}</ul>")
    if problems:
        body.append(f"<p>{html.escape(text['gap'])}</p>")
    body.append("</body></html>")
    key = hashlib.sha256(
        "\n".join(f"{c.source}\t{c.verdict.state}" for c in changes).encode("utf-8")
    ).hexdigest()[:12]
    return OutboxMessage(
        message_id=f"health.{now:%Y%m%dT%H%M%S}.{key}",
        kind="source_health",
        recipients=settings.source_notice_recipients,
        subject=header_safe(subject),
        html="".join(body),
    )


def as_drill(message: OutboxMessage, language: str) -> OutboxMessage:
    """The same email marked as part of a drill: tag in the subject, banner on top, header.

    For mail rendered without knowing it belongs to a drill (an escalation of a drill alert).
    """
    text = TEXT[language]
    if message.drill:
        return message
    style = "background:#fff3cd;border:2px solid #c58a00;padding:8px;font-weight:bold"
    return replace(
        with_banner(message, text["drill"], style),
        subject=header_safe(f"{text['drill_tag']} {message.subject}"),
        drill=True,
    )


def with_banner(message: OutboxMessage, line: str, style: str) -> OutboxMessage:
    """`message` with `line` on top: a styled paragraph first in the HTML body, and the first
    paragraph of the plain text."""
    banner = f'<p style="{style}">{html.escape(line)}</p>'
    body = message.html
    marker = body.find(">", body.find("<body")) + 1 if "<body" in body else 0
    return replace(
        message,
        html=body[:marker] + banner + body[marker:],
        text=f"{line}\n\n{message.text}" if message.text else "",
    )
