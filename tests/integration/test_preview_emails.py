"""Every email `vigie preview` renders, in both languages, read as the cell reads it (issue 21):
no English in a French email, no decimal point in French numbers, crisis words as the mentions
write them, and, in the emails that ask someone to act, what to do now and the phones."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from cli.preview import make_preview, with_language
from cli.preview_kinds import KINDS
from cli.preview_sample import CALM_ITEMS, CRISIS_STORIES
from cli.watchdog import WatchState, watchdog_notices
from tasks.notify.delivery import text_from_html
from tasks.notify.drill import drill_report_message
from tasks.notify.emails import quality_notice, source_health_notice
from tests.configs import MINIMAL_TOML, settings_from
from vigie.models import HealthChange, HealthVerdict, OutboxMessage, SourceCondition
from warehouse.drills import DrillRecord

if TYPE_CHECKING:
    from cli.preview import Kind
    from vigie.settings import Language, Settings

NOW = datetime(2026, 12, 7, 15, 5, tzinfo=UTC)
CELL = """
[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@laiterie-boreale.example"
role = "lead"
level = 1
phone = "+1 514 555 0100"
backup = "Sophie Roy"
platforms = ["facebook", "x"]

[[cell.members]]
name = "Louis Tremblay"
email = "louis.tremblay@laiterie-boreale.example"
role = "spokesperson"
level = 1
phone = "514 555 0101"
platforms = ["radio"]

[[cell.members]]
name = "Sophie Roy"
email = "sophie.roy@laiterie-boreale.example"
role = "legal"
level = 2
phone = "514 555 0102"
"""
# Words that give English away in a French email (whole words, any case).
ENGLISH_TELLS = (
    "the",
    "and",
    "of",
    "with",
    "from",
    "severity",
    "spike",
    "window",
    "median",
    "answers",
    "failed",
    "never",
    "since",
    "deviation",
)
# The emails that ask somebody to act now: the runbook's steps and the phones must be in them.
TO_ACT = {"alert", "escalation", "sitrep"}
TODO = {"fr": "Que faire maintenant", "en": "What to do now"}
CRISIS_LINE = {"fr": "Mots de crise dans les mentions : ", "en": "Crisis words in the mentions: "}


def _visible_text(page: str) -> str:
    """What the reader sees of the email: tags, links and addresses out, entities decoded."""
    text = text_from_html(page)
    text = re.sub(r"https?://\S+|\S+@\S+", " ", text)
    return html.unescape(text)


def _sample_texts() -> str:
    return " ".join(f"{title} {summary}" for _, title, summary, *_ in CRISIS_STORIES).lower()


def _without_feed_text(text: str, org: str) -> str:
    """`text` without the sample mentions' own titles (feed text, in its own language)."""
    titles = [t for _, t, *_ in CRISIS_STORIES] + [t for t, *_ in CALM_ITEMS]
    for title in titles:
        text = text.replace(title.format(org=org), " ")
    return text


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings_from(tmp_path_factory.mktemp("preview"), MINIMAL_TOML + CELL)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_preview_reads_right_for_the_people_who_get_it(
    settings: Settings, kind: Kind, language: Language
) -> None:
    preview = make_preview(settings, kind, data="sample", language=language, now=NOW)
    message = preview.message
    shown = _visible_text(message.html)
    plain = message.text or shown
    org = settings.organisation.name
    for text in (shown, plain, message.subject):
        text = _without_feed_text(text, org)
        # A recorded technical error is quoted as the machine wrote it, on its own line.
        text = "\n".join(ln for ln in text.splitlines() if "Détail technique" not in ln)
        if language == "fr":
            tells = [w for w in ENGLISH_TELLS if re.search(rf"(?i)\b{w}\b", text)]
            assert not tells, (kind, tells)
            decimals = re.findall(r"\d+\.\d+", re.sub(r"\S+@\S+|https?://\S+", " ", text))
            assert not decimals, (kind, decimals)
            assert not re.search(r"\d{4}-\d{2}-\d{2}|\bUTC\b|\bE[SD]T\b", text), kind
        assert "*" not in text, kind
        assert "(s)" not in text, kind  # counts take their plural form
    line = next((ln for ln in shown.splitlines() if CRISIS_LINE[language] in ln), None)
    if kind == "alert":
        assert line is not None, shown
    if line is not None:
        written = _sample_texts()
        for word in line.split(CRISIS_LINE[language], 1)[1].strip(" .").split(", "):
            assert word.lower() in written, (kind, word)
    if kind in TO_ACT:
        assert TODO[language] in shown, kind
        assert "514 555 0100" in shown or "514 555 0102" in shown, kind
        assert "514 555 0102" in shown if kind == "escalation" else "514 555 0101" in shown


def _notices(settings: Settings, language: Language) -> dict[str, OutboxMessage]:
    """The operators' and the drill's emails, rendered by their own renderers."""
    settings = with_language(settings, language)
    failing = SourceCondition(
        "Le Quotidien", 3, "HTTP 503 Service Unavailable", None, 3600.0, "failing", None, NOW
    )
    never = SourceCondition("Radio Nord", 2, "not a feed: an HTML page", None, None, "ok", None)
    changes = [
        HealthChange("Le Quotidien", "ok", HealthVerdict("failing", ""), failing),
        HealthChange("Radio Nord", "ok", HealthVerdict("not_a_feed", ""), never),
    ]
    [stopped] = watchdog_notices(
        settings, WatchState(NOW, timedelta(minutes=30), "c1", NOW - timedelta(hours=26)), None
    )
    record = DrillRecord(
        "drill-novembre",
        "Novembre",
        "marque",
        NOW,
        NOW + timedelta(seconds=5),
        NOW + timedelta(seconds=17),
        "al-1",
        NOW + timedelta(seconds=20),
        NOW + timedelta(minutes=2),
        "Awa Diallo",
        "acknowledged",
        12.4,
        125.0,
        30,
        NOW + timedelta(minutes=2),
    )
    return {
        "source_health": source_health_notice(settings, changes, now=NOW),
        "quality": quality_notice(
            settings,
            source="Le Quotidien",
            transition="degraded",
            failed=1204,
            total=2000,
            reasons=["expect_column_values_to_match_regex"],
            now=NOW,
        ),
        "watchdog": stopped,
        "drill_report": drill_report_message(settings, record),
    }


@pytest.mark.parametrize("kind", ["source_health", "quality", "watchdog", "drill_report"])
def test_the_notices_in_french_are_french_with_french_numbers_and_dates(
    settings: Settings, kind: str
) -> None:
    message = _notices(settings, "fr")[kind]
    for text in (_visible_text(message.html), message.text or "", message.subject):
        # The recorded technical error is quoted as the machine wrote it, on its own line.
        kept = [ln for ln in text.splitlines() if "Détail technique" not in ln]
        text = "\n".join(kept)
        tells = [w for w in ENGLISH_TELLS if re.search(rf"(?i)\b{w}\b", text)]
        assert not tells, (kind, tells)
        assert not re.findall(r"\d+\.\d+", text), kind
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\bUTC\b|\bE[SD]T\b", text), kind


INCIDENT_FIRST = {
    ("sitrep", "fr"): "Le sujet le plus cité depuis le dernier point est « marque »",
    ("sitrep", "en"): "The most mentioned topic since the last report is “marque”",
    ("incident-report", "fr"): "L’incident a duré 55 minutes (terminé) ; 1 point de situation",
    ("incident-report", "en"): "The incident lasted 55 minutes (ended); 1 situation report sent",
}
DETAILS = {"fr": "Détails", "en": "Details"}


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", ["sitrep", "incident-report"])
def test_incident_emails_say_it_plainly_first_and_keep_the_ids_for_the_details(
    settings: Settings, kind: Kind, language: Language
) -> None:
    """The situation report and the final report are templates like the alert's: plain words
    first, local time, and the ids only in the "Détails" part at the end."""
    message = make_preview(settings, kind, data="sample", language=language, now=NOW).message
    for text in (_visible_text(message.html), message.text or ""):
        first = text.index(INCIDENT_FIRST[kind, language])
        volumes = text.index("Volumes par sujet" if language == "fr" else "Volumes per topic")
        details = text.index(DETAILS[language])
        assert first < volumes < details, text
        assert not re.search(r"\b(al|inc)-\d", text[:details]), text
        assert re.search(r"\bal-\d+-sample\b", text[details:]), text
    assert message.subject.startswith("[Vigie][INCIDENT] marque — ")
