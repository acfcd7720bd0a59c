"""render_digest: the digest email in French and English, safe with hostile input."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.notify.digest import (
    Digest,
    FailedSource,
    PeriodAlert,
    TopicVolume,
    TopStory,
    cell_recipients,
    format_date,
    format_range,
    render_digest,
)
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import InlineImage
from vigie.settings import Settings

END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 07:00 in Toronto
TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


def _settings(tmp_path: Path, language: str = "fr", name: str = "Laiterie Boréale") -> Settings:
    toml = (MINIMAL_TOML + CELL_TOML).replace('language = "fr"', f'language = "{language}"')
    settings = settings_from(tmp_path, toml)
    # Set after validation: the configuration refuses control characters in names, and the
    # rendering must stay safe on its own.
    organisation = settings.organisation.model_copy(update={"name": name})
    return settings.model_copy(update={"organisation": organisation})


def _story(story_id: str, title: str, url: str, tier: int = 3) -> TopStory:
    return TopStory(story_id, title, url, "Le Quotidien", tier, 3, 2, END - timedelta(hours=5), ())


def _digest(period: str = "daily", **changes: object) -> Digest:
    length = timedelta(days=1 if period == "daily" else 7)
    fields: dict[str, object] = {
        "period": period,
        "start": END - length,
        "end": END,
        "previous_start": END - 2 * length,
        "topics": (
            TopicVolume(
                "marque", 30, 12, 9, 20, 2, 10, InlineImage("volume-abc", b"\x89PNG\r\n\x1a\n")
            ),
        ),
        "stories": (
            _story(
                "s1", "La Laiterie Boréale rappelle ses fromages", "https://quotidien.example/1", 1
            ),
            _story("s2", "<script>alert('x')</script> Crème", "https://blog.example/2"),
            _story("s3", "Piège", "javascript:alert(document.cookie)"),
        ),
        "failed_sources": (
            FailedSource("Radio Nord", 3, 6, "HTTP 500 <b>oops</b>", END, True, "failing"),
        ),
        "alerts": (
            PeriodAlert(
                "al-1",
                "marque",
                "alerte",
                "acknowledged",
                END - timedelta(hours=3),
                None,
                62.0,
                14,
                "Awa Diallo",
                END - timedelta(hours=2),
            ),
        ),
    }
    fields.update(changes)
    return Digest(**fields)  # type: ignore[arg-type]


def test_french_digest_subject_text_and_accents(tmp_path: Path) -> None:
    message = render_digest(_digest(), _settings(tmp_path))
    assert message.subject == "[Vigie][RÉSUMÉ] Laiterie Boréale — 25 novembre 2026"
    assert message.kind == "digest"
    assert message.message_id == "digest.daily.20261125T120000Z"
    assert "Résumé quotidien — Laiterie Boréale" in message.html
    assert "+150 %" in message.html and "45 %" in message.html and "20 %" in message.html
    assert "Du 24 novembre 2026 à 07:00 au 25 novembre 2026 à 07:00" in message.text
    assert "- marque : 30 mentions (période précédente : 12, +150 %)" in message.text
    assert "[ALERTE] marque — prise en charge" in message.text
    assert "prise en charge par Awa Diallo le 25 novembre 2026 à 05:00" in message.text
    assert "Radio Nord : 3 échecs sur 6 collectes, toujours en échec, en panne" in message.text


def test_english_digest(tmp_path: Path) -> None:
    message = render_digest(_digest(), _settings(tmp_path, "en"))
    assert message.subject == "[Vigie][DIGEST] Laiterie Boréale — 25 November 2026"
    assert "Daily digest — Laiterie Boréale" in message.html
    assert (
        "- marque: 30 mentions (previous period: 12, +150%); negative share 45% (before: 20%)"
        in (message.text)
    )
    assert "[ALERT] marque — acknowledged" in message.text
    assert "résumé" not in message.html.lower()


def test_weekly_subjects_name_the_week(tmp_path: Path) -> None:
    fr = render_digest(_digest("weekly"), _settings(tmp_path))
    assert fr.subject == (
        "[Vigie][RÉSUMÉ HEBDOMADAIRE] Laiterie Boréale — semaine du 18 au 25 novembre 2026"
    )
    assert fr.message_id == "digest.weekly.20261125T120000Z"
    en = render_digest(_digest("weekly"), _settings(tmp_path, "en"))
    assert en.subject == "[Vigie][WEEKLY DIGEST] Laiterie Boréale — week of 18–25 November 2026"


def test_dates_without_locale() -> None:
    first = datetime(2026, 10, 28, tzinfo=UTC)
    last = datetime(2026, 11, 1, tzinfo=UTC)
    assert format_date(last, "fr") == "1er novembre 2026"
    assert format_date(datetime(2026, 2, 3, tzinfo=UTC), "fr") == "3 février 2026"
    assert format_range(first, last, "fr") == "28 octobre au 1er novembre 2026"
    assert format_range(first, last, "en") == "28 October – 1 November 2026"
    assert format_range(
        datetime(2025, 12, 29, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC), "fr"
    ) == ("29 décembre 2025 au 5 janvier 2026")


def test_untrusted_titles_are_escaped_and_only_http_links_are_links(tmp_path: Path) -> None:
    message = render_digest(_digest(), _settings(tmp_path))
    assert "<script>" not in message.html and "<b>oops" not in message.html
    # Escaped by the template (Jinja2 writes an apostrophe &#39;).
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Crème" in message.html
    assert "HTTP 500 &lt;b&gt;oops&lt;/b&gt;" in message.html
    assert "javascript:" not in message.html and "javascript:" not in message.text
    assert "Piège" in message.html  # the title stays, as plain text
    hrefs = re.findall(r'href="([^"]*)"', message.html)
    assert hrefs == ["https://quotidien.example/1", "https://blog.example/2"]
    assert 'src="cid:volume-abc"' in message.html
    assert message.images == (InlineImage("volume-abc", b"\x89PNG\r\n\x1a\n"),)


def test_control_characters_never_reach_the_subject_or_split_a_line(tmp_path: Path) -> None:
    settings = _settings(tmp_path, name="Laiterie\r\nBcc: attacker@example.org")
    hostile = _story("s9", "Titre\r\nX-Injected: 1\u202e", "https://x.example/\r\n9")
    message = render_digest(_digest(stories=(hostile,)), settings)
    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.subject.startswith("[Vigie][RÉSUMÉ] Laiterie Bcc: attacker@example.org — ")
    assert "- Titre X-Injected: 1\n" in message.text
    assert "\r" not in message.text and "\u202e" not in message.text


def test_plain_text_is_not_empty_and_has_no_html(tmp_path: Path) -> None:
    safe = _digest(
        stories=(_story("s1", "La Laiterie Boréale rappelle", "https://quotidien.example/1"),),
        failed_sources=(FailedSource("Radio Nord", 1, 2, "HTTP 500", END, False, "ok"),),
    )
    for language in ("fr", "en"):
        message = render_digest(safe, _settings(tmp_path, language))
        assert len(message.text.splitlines()) > 10
        assert not TAG.search(message.text), TAG.search(message.text)
        assert "https://quotidien.example/1" in message.text
        assert TAG.search(message.html)


def test_an_empty_period_says_so(tmp_path: Path) -> None:
    empty = _digest(
        topics=(TopicVolume("marque", 0, 0, 0, 0, 0, 0, None),),
        stories=(),
        failed_sources=(),
        alerts=(),
    )
    message = render_digest(empty, _settings(tmp_path))
    for sentence in (
        "Aucune mention dans la période.",
        "Aucune source n’a échoué pendant la période.",
        "Aucune alerte pendant la période.",
    ):
        assert sentence in message.text and sentence in message.html
    assert "cid:" not in message.html and message.images == ()


def test_the_whole_cell_receives_it_once_each(tmp_path: Path) -> None:
    toml = (
        MINIMAL_TOML
        + CELL_TOML
        + (
            '\n[[cell.members]]\nname = "Awa (backup)"\n'
            'email = "AWA.DIALLO@laiterie-boreale.example"\nrole = "lead"\nlevel = 2\n'
        )
    )
    settings = settings_from(tmp_path, toml)
    assert cell_recipients(settings) == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
        "sophie.roy@laiterie-boreale.example",
    )
    assert render_digest(_digest(), settings).recipients == cell_recipients(settings)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_rendering_is_deterministic(tmp_path: Path, language: str) -> None:
    settings = _settings(tmp_path, language)
    assert render_digest(_digest(), settings) == render_digest(_digest(), settings)
