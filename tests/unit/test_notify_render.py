"""Unit tests of the pure parts of `tasks.notify.emails`: header cleaning and alert email rendering
(language, escaping of hostile feed text, who is listed as on duty)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tasks.notify.emails import MAX_SUBJECT_CHARS, alert_message, header_safe, render_alert_email
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import InlineImage, VolumeSignal

if TYPE_CHECKING:
    from pathlib import Path

    from vigie.settings import Settings

WINDOW_END = datetime(2024, 5, 14, 15, 0, tzinfo=UTC)
HOSTILE_TITLE = "<script>alert(1)</script> Rappel à la Laiterie Boréale"
JAVASCRIPT_URL = "javascript:alert(1)"
SAFE_URL = "https://quotidien-du-nord.example/2024/05/rappel?a=1&b=2"

SIGNAL = VolumeSignal(
    topic="marque",
    window_start=WINDOW_END - timedelta(hours=1),
    window_end=WINDOW_END,
    current=20,
    baseline_median=2.0,
    baseline_spread=1.41,
    score=0.99,
    z=12.7,
    triggered=True,
)


def top_mentions() -> list[dict[str, Any]]:
    return [
        {
            "story_id": "s1",
            "title": HOSTILE_TITLE,
            "url": JAVASCRIPT_URL,
            "source": "Forum <b>Lait</b>",
            "tier": 3,
            "copies": 1,
            "published_at": datetime(2024, 5, 14, 14, 30, tzinfo=UTC),
        },
        {
            "story_id": "s2",
            "title": "Le « rappel » s'étend",
            "url": SAFE_URL,
            "source": "Le Quotidien du Nord",
            "tier": 1,
            "copies": 4,
            "published_at": datetime(2024, 5, 14, 14, 45, tzinfo=UTC),
        },
    ]


@pytest.fixture
def settings_fr(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)


@pytest.fixture
def settings_en(tmp_path: Path) -> Settings:
    return settings_from(
        tmp_path, MINIMAL_TOML.replace('language = "fr"', 'language = "en"') + CELL_TOML
    )


def render(
    settings: Settings, *, level: str = "alerte", run_url: str | None = None
) -> tuple[str, str]:
    return render_alert_email(
        settings,
        alert_id="al-202405141500-abcd1234",
        signal=SIGNAL,
        level=level,
        top_mentions=top_mentions(),
        run_url=run_url,
    )


def hrefs(body: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', body)


# --- header_safe -----------------------------------------------------------------------------


def test_header_safe_turns_a_header_injection_into_one_line() -> None:
    cleaned = header_safe("x\r\nBcc: evil@x")
    assert "\r" not in cleaned and "\n" not in cleaned
    assert cleaned == "x Bcc: evil@x"


@pytest.mark.parametrize(
    "control",
    [
        pytest.param("\r", id="CR"),
        pytest.param("\n", id="LF"),
        pytest.param("\x00", id="NUL"),
        pytest.param("\u202e", id="RLO"),
        pytest.param("\u2028", id="line-separator"),
    ],
)
def test_header_safe_removes_control_characters(control: str) -> None:
    assert header_safe(f"Pic{control}de mentions") == "Pic de mentions"


def test_header_safe_collapses_spaces() -> None:
    assert header_safe("  Pic   de\t mentions  ") == "Pic de mentions"


def test_header_safe_truncates_a_long_subject_with_an_ellipsis() -> None:
    cleaned = header_safe("a" * 500)
    assert len(cleaned) == MAX_SUBJECT_CHARS
    assert cleaned.endswith("…")


def test_header_safe_keeps_a_subject_of_exactly_the_limit() -> None:
    assert header_safe("a" * MAX_SUBJECT_CHARS) == "a" * MAX_SUBJECT_CHARS


def test_header_safe_honours_a_custom_limit() -> None:
    assert header_safe("abcdefghijkl", 5) == "abcd…"


# --- render_alert_email: subject and language ------------------------------------------------


def test_french_subject_starts_with_the_french_level(settings_fr: Settings) -> None:
    subject, _ = render(settings_fr)
    assert subject.startswith("[Vigie][ALERTE]")


def test_english_subject_starts_with_the_english_level(settings_en: Settings) -> None:
    subject, _ = render(settings_en)
    assert subject.startswith("[Vigie][ALERT]")


@pytest.mark.parametrize(
    ("fixture", "prefix"),
    [
        pytest.param("settings_fr", "[Vigie][CRISE]", id="fr"),
        pytest.param("settings_en", "[Vigie][CRISIS]", id="en"),
    ],
)
def test_crisis_level_appears_in_the_subject(
    request: pytest.FixtureRequest, fixture: str, prefix: str
) -> None:
    subject, _ = render(request.getfixturevalue(fixture), level="crise")
    assert subject.startswith(prefix)


def test_subject_names_organisation_topic_and_count(settings_fr: Settings) -> None:
    subject, _ = render(settings_fr)
    assert "Laiterie Boréale" in subject
    assert "« marque »" in subject
    assert "(20 en 60 min)" in subject


def test_subject_is_a_single_line(settings_fr: Settings) -> None:
    subject, _ = render(settings_fr)
    assert "\n" not in subject and "\r" not in subject


def test_french_body_is_in_french(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "Pic de mentions pour" in body
    assert "Spike in mentions" not in body


def test_english_body_is_in_english(settings_en: Settings) -> None:
    _, body = render(settings_en)
    assert "Spike in mentions of" in body
    assert "Pic de mentions" not in body


def test_times_are_shown_in_the_organisation_time_zone(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    # 14:00-15:00 UTC is 10:00-11:00 in Toronto (EDT) in May; day and month in French.
    assert "entre mardi 14 mai 2024 à 10:00 et 11:00 (heure de Toronto)" in body


def test_repeated_copies_are_mentioned(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "4 reprises" in body


# --- render_alert_email: hostile feed text ---------------------------------------------------


def test_a_script_tag_in_a_title_is_escaped(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "<script" not in body.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_html_in_a_source_name_is_escaped(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "<b>Lait</b>" not in body
    assert "Forum &lt;b&gt;Lait&lt;/b&gt;" in body


def test_a_javascript_url_is_never_a_link(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert not any(h.lower().startswith("javascript:") for h in hrefs(body))
    assert "javascript:" not in body.lower()


def test_a_mention_with_a_javascript_url_keeps_its_title_as_text(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "Rappel à la Laiterie Boréale" in body


def test_an_http_url_is_a_link_with_escaped_ampersands(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "https://quotidien-du-nord.example/2024/05/rappel?a=1&amp;b=2" in hrefs(body)


@pytest.mark.parametrize(
    ("run_url", "linked"),
    [
        pytest.param("http://127.0.0.1:4200/runs/flow-run/123", True, id="http"),
        pytest.param("javascript:alert(document.cookie)", False, id="javascript"),
        pytest.param(None, False, id="none"),
    ],
)
def test_the_run_link_is_only_an_http_link(
    settings_fr: Settings, run_url: str | None, linked: bool
) -> None:
    _, body = render(settings_fr, run_url=run_url)
    assert ("http://127.0.0.1:4200/runs/flow-run/123" in hrefs(body)) is linked
    assert "javascript:" not in body


# --- render_alert_email: who is on duty ------------------------------------------------------


def test_first_level_members_are_listed_with_their_emails(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    for name, email in [
        ("Awa Diallo", "awa.diallo@laiterie-boreale.example"),
        ("Louis Tremblay", "louis.tremblay@laiterie-boreale.example"),
    ]:
        assert name in body
        assert f"mailto:{email}" in hrefs(body)


def test_second_level_members_are_not_listed(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "Sophie Roy" not in body
    assert "sophie.roy@" not in body


def test_platform_rights_are_stated(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "autorisé·e à répondre sur : facebook, x" in body
    assert "n’est autorisé·e à répondre sur aucune plateforme" in body


def test_the_alert_message_goes_to_first_level_only(settings_fr: Settings) -> None:
    message = alert_message(
        settings_fr,
        alert_id="al-1",
        signal=SIGNAL,
        level="alerte",
        top_mentions=top_mentions(),
        run_url=None,
    )
    assert message.recipients == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
    )
    assert (message.message_id, message.kind, message.alert_id) == ("al-1.opened", "alert", "al-1")


def test_the_charter_is_quoted_escaped(tmp_path: Path) -> None:
    cell = (
        '[cell]\ncharter = ["Nous répondons en moins d’une heure.", '
        '"Jamais de <b>suppression</b>."]\n'
    )
    settings = settings_from(tmp_path, MINIMAL_TOML + cell + CELL_TOML)
    _, body = render(settings)
    assert "<h3>Charte d’engagement</h3><ol><li>Nous répondons en moins d’une heure.</li>" in body
    assert "<li>Jamais de &lt;b&gt;suppression&lt;/b&gt;.</li></ol>" in body


def test_no_charter_no_charter_heading(settings_fr: Settings) -> None:
    _, body = render(settings_fr)
    assert "Charte d’engagement" not in body


# --- chart, acknowledgement, drills ----------------------------------------------------------


def _alert(settings: Settings, **options: Any) -> Any:
    return alert_message(
        settings,
        alert_id="al-7",
        signal=SIGNAL,
        level="alerte",
        top_mentions=top_mentions(),
        run_url=None,
        **options,
    )


def test_the_alert_shows_its_chart_inline_and_says_how_to_take_charge(
    settings_fr: Settings,
) -> None:
    chart = InlineImage("volume-abc", b"\x89PNG\r\n\x1a\n")
    message = _alert(settings_fr, chart=chart, ack_url="http://127.0.0.1:4200/runs/flow-run/9")
    assert message.images == (chart,) and message.critical
    assert 'src="cid:volume-abc"' in message.html
    assert 'vigie ack al-7 --by "Votre nom"' in html.unescape(message.html)
    assert "http://127.0.0.1:4200/runs/flow-run/9" in hrefs(message.html)
    assert "javascript:" not in _alert(settings_fr, ack_url="javascript:alert(1)").html


def test_a_drill_is_marked_as_an_exercise_everywhere(
    settings_fr: Settings, settings_en: Settings
) -> None:
    drill = _alert(settings_fr, drill=True)
    assert drill.drill and drill.subject.startswith("[EXERCICE] [Vigie][ALERTE]")
    assert "EXERCICE — ceci n’est pas une vraie crise" in drill.html
    assert _alert(settings_en, drill=True).subject.startswith("[DRILL] [Vigie][ALERT]")
    assert "EXERCICE" not in _alert(settings_fr).html
