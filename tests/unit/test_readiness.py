"""Unit tests of `tasks.notify.readiness`: which teams are due on a controllable clock, the period
named in the message id, and the reminder's rendering in French and English (accents, escaping,
headers, a plain-text alternative)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.notify.readiness import (
    due_teams,
    last_reminders,
    period_start,
    render_readiness,
    team_key,
)
from tests.configs import MINIMAL_TOML, READY_CELL_TOML, settings_from
from vigie.settings import Settings, Team

# Toronto: 09:00 EST is 14:00 UTC (daylight saving time ended on 2026-11-01 at 02:00).
FIRST_OF_DECEMBER_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
MONDAY_30_NOVEMBER_8AM = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + READY_CELL_TOML)


def names(teams: list[Team]) -> list[str]:
    return [t.name for t in teams]


def test_the_period_is_the_latest_occurrence_in_the_organisations_time_zone(
    settings: Settings,
) -> None:
    clientele, sales = settings.teams
    assert period_start(settings, clientele, FIRST_OF_DECEMBER_9AM) == FIRST_OF_DECEMBER_9AM
    assert period_start(settings, clientele, FIRST_OF_DECEMBER_9AM - MINUTE) == datetime(
        2026, 11, 1, 14, 0, tzinfo=UTC
    )
    # Before daylight saving time ended, 09:00 in Toronto was 13:00 UTC.
    assert period_start(settings, clientele, datetime(2026, 10, 20, tzinfo=UTC)) == datetime(
        2026, 10, 1, 13, 0, tzinfo=UTC
    )
    assert period_start(settings, sales, MONDAY_30_NOVEMBER_8AM + timedelta(days=3)) == (
        MONDAY_30_NOVEMBER_8AM
    )


def test_teams_never_reminded_are_due_at_once(settings: Settings) -> None:
    now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
    assert names(due_teams(settings, {}, now)) == ["Service à la clientèle", "Ontario sales"]
    assert names(due_teams(settings, {"Ontario sales": None}, now)) == [
        "Service à la clientèle",
        "Ontario sales",
    ]


def test_a_team_is_due_again_only_when_its_next_occurrence_has_come(settings: Settings) -> None:
    reminded = {
        "Service à la clientèle": datetime(2026, 11, 1, 14, 5, tzinfo=UTC),
        "Ontario sales": MONDAY_30_NOVEMBER_8AM - timedelta(days=7),
    }
    assert names(due_teams(settings, reminded, datetime(2026, 11, 20, tzinfo=UTC))) == []
    assert names(due_teams(settings, reminded, MONDAY_30_NOVEMBER_8AM - MINUTE)) == []
    assert names(due_teams(settings, reminded, MONDAY_30_NOVEMBER_8AM)) == ["Ontario sales"]
    assert names(due_teams(settings, reminded, FIRST_OF_DECEMBER_9AM - MINUTE)) == ["Ontario sales"]
    assert names(due_teams(settings, reminded, FIRST_OF_DECEMBER_9AM + timedelta(seconds=30))) == [
        "Service à la clientèle",
        "Ontario sales",
    ]


def test_last_reminders_come_from_the_outbox_message_ids(settings: Settings) -> None:
    clientele, sales = settings.teams
    first = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    log = [
        (f"readiness.{team_key(clientele)}.20261101T1400Z", first, first),
        (f"readiness.{team_key(clientele)}.20261201T1400Z", first + timedelta(days=30), None),
        (f"readiness.{team_key(sales)}.20261123T1300Z.forced.20261124T1000Z", first, None),
        ("readiness.0123456789ab.20261101T1400Z", first + timedelta(days=60), None),
    ]
    assert last_reminders(settings, log) == {
        "Service à la clientèle": first + timedelta(days=30),
        "Ontario sales": first,
    }


def test_the_message_id_names_the_team_and_the_period(settings: Settings) -> None:
    clientele, sales = settings.teams
    early = render_readiness(settings, clientele, now=FIRST_OF_DECEMBER_9AM + MINUTE)
    late = render_readiness(settings, clientele, now=FIRST_OF_DECEMBER_9AM + timedelta(days=20))
    nxt = render_readiness(settings, clientele, now=FIRST_OF_DECEMBER_9AM + timedelta(days=31))
    other = render_readiness(settings, sales, now=FIRST_OF_DECEMBER_9AM + MINUTE)
    forced = render_readiness(settings, clientele, now=FIRST_OF_DECEMBER_9AM + MINUTE, forced=True)
    assert early.message_id == late.message_id == f"readiness.{team_key(clientele)}.20261201T1400Z"
    assert nxt.message_id == f"readiness.{team_key(clientele)}.20270101T1400Z"
    assert other.message_id == f"readiness.{team_key(sales)}.20261130T1300Z"
    assert forced.message_id == early.message_id + ".forced.20261201T1401Z"


def _tags(text: str) -> list[str]:
    return re.findall(r"</?[a-zA-Z][^>]*>", text)


def test_the_french_reminder_says_who_how_and_what_to_do(settings: Settings) -> None:
    message = render_readiness(settings, settings.teams[0], now=FIRST_OF_DECEMBER_9AM)
    assert message.kind == "readiness" and not message.critical and not message.drill
    assert message.recipients == (
        "clientele@laiterie-boreale.example",
        "superviseurs@laiterie-boreale.example",
    )
    assert message.subject == (
        "[Vigie] La cellule de crise de Laiterie Boréale est prête — rappel pour "
        "Service à la clientèle"
    )
    body = message.html
    assert '<html lang="fr">' in body and '<meta charset="utf-8">' in body
    assert "Qui est dans la cellule" in body and "Niveau 1 (alerté en premier)" in body
    assert "<strong>Awa Diallo</strong> — responsable de la cellule" in body
    assert "+1 514 555 0101" in body and "suppléance : Jean Gagnon" in body
    assert "langues : français, anglais" in body
    assert '<a href="mailto:cellule@laiterie-boreale.example"' in body
    assert "avec le lien et une capture d’écran" in body
    assert "Ne supprimez rien" in body
    assert "Ne répondez pas au nom de Laiterie Boréale" in body
    assert "<li>facebook : Awa Diallo, Louis Tremblay</li>" in body
    assert "<li>Nous ne supprimons jamais un commentaire critique.</li>" in body
    assert "Charte d’engagement" in body
    # Readable in mail clients: styles inline, no remote resources, only mailto links here.
    assert "<style" not in body and "<link" not in body and "<img" not in body
    assert re.findall(r'href="([a-z]+):', body) == ["mailto"] * len(re.findall(r"href=", body))


def test_the_english_reminder_is_in_english(settings: Settings) -> None:
    message = render_readiness(settings, settings.teams[1], now=FIRST_OF_DECEMBER_9AM)
    assert message.recipients == ("sales-on@laiterie-boreale.example",)
    assert message.subject == (
        "[Vigie] Laiterie Boréale's crisis cell is ready — reminder for Ontario sales"
    )
    assert "Who is in the cell" in message.html and "Level 1 (alerted first)" in message.html
    assert "cell lead" in message.html and "languages: French, English" in message.html
    assert "Forward it to the cell at once, with the link and a screenshot." in message.html
    assert "Do not answer in the name of Laiterie Boréale" in message.html
    assert "Rules of engagement (charter)" in message.text
    assert "Qui est" not in message.html and "Ne supprimez" not in message.text


def test_the_plain_text_alternative_carries_the_same_content_without_tags(
    settings: Settings,
) -> None:
    message = render_readiness(settings, settings.teams[0], now=FIRST_OF_DECEMBER_9AM)
    text = message.text
    assert _tags(text) == []
    assert "Écrivez à l’adresse de la cellule : cellule@laiterie-boreale.example." in text
    assert (
        "  - Awa Diallo — responsable de la cellule · awa.diallo@laiterie-boreale.example" in text
    )
    assert "2. Nous ne supprimons jamais un commentaire critique." in text
    assert "  - instagram : Louis Tremblay" in text


def test_without_a_cell_address_things_go_to_the_first_level(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        MINIMAL_TOML + READY_CELL_TOML.replace('address = "cellule@laiterie-boreale.example"', ""),
    )
    message = render_readiness(settings, settings.teams[0], now=FIRST_OF_DECEMBER_9AM)
    assert (
        "Écrivez aux membres du premier niveau : awa.diallo@laiterie-boreale.example, "
        "louis.tremblay@laiterie-boreale.example, chloe.martin@laiterie-boreale.example."
    ) in message.text
    assert "En cas d’urgence, appelez : Awa Diallo +1 514 555 0101." in message.text


def test_config_text_is_escaped_and_headers_cannot_be_injected(tmp_path: Path) -> None:
    hostile = READY_CELL_TOML.replace(
        'name = "Service à la clientèle"',
        'name = "<script>alert(1)</script> Équipe"',
    ).replace(
        '"Nous ne supprimons jamais un commentaire critique."',
        '"Nous ne <b>supprimons</b> jamais un commentaire critique."',
    )
    settings = settings_from(tmp_path, MINIMAL_TOML + hostile)
    # The configuration refuses control characters in names; the rendering stays safe alone.
    team = settings.teams[0].model_copy(
        update={"name": settings.teams[0].name + "\r\nBcc: espion@example.org"}
    )
    message = render_readiness(settings, team, now=FIRST_OF_DECEMBER_9AM)
    assert "<script>" not in message.html and "<b>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Équipe" in message.html
    assert "Nous ne &lt;b&gt;supprimons&lt;/b&gt; jamais" in message.html
    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.subject.endswith(
        "rappel pour <script>alert(1)</script> Équipe Bcc: espion@example.org"
    )
    assert ".\r\n" not in message.message_id and re.fullmatch(r"[\w.]+", message.message_id)
