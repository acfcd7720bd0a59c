"""Alert and escalation emails read by the people who must act (issue 21, item 1): the
organisation's number and date formats, plain words before the statistics, crisis terms as
written, the watch's label, what to do now, who is on duty with phones and backups, and links
at the public Prefect UI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tasks.detect.signals import Severity, assess_severity
from tasks.notify.emails import render_alert_email
from tasks.notify.escalation import Paging, escalation_message
from tasks.notify.rendering import catalogue, is_loopback_url, loopback_ui_warning, rebase_link
from tests.configs import MINIMAL_TOML, settings_from
from vigie.models import VolumeSignal, WindowMention
from warehouse.store import StoredAlert

if TYPE_CHECKING:
    from pathlib import Path

    from vigie.settings import Settings

WINDOW_END = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)  # 14:00 in Toronto (EST)
SIGNAL = VolumeSignal(
    "marque", WINDOW_END - timedelta(hours=1), WINDOW_END, 46, 4.0, 2.5, 1.0, 16.0, True
)
CELL = """
[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@hopital.example"
role = "lead"
level = 1
phone = "+1 514 555 0100"
backup = "Sophie Roy"
platforms = ["facebook", "x"]

[[cell.members]]
name = "Louis Tremblay"
email = "louis.tremblay@hopital.example"
role = "spokesperson"
level = 1
phone = "514 555 0101"
platforms = ["radio", "television"]

[[cell.members]]
name = "Sophie Roy"
email = "sophie.roy@hopital.example"
role = "legal"
level = 2
phone = "514 555 0102"
"""
LABELLED = MINIMAL_TOML.replace(
    'name = "marque"\n', 'name = "marque"\nlabel = "Hôpital Sainte-Anne"\n'
)
TITLES = [
    "Trois patients hospitalisés après une infection à l’Hôpital Sainte-Anne",
    "Une enquête est ouverte sur l’Hôpital Sainte-Anne",
    "Hôpital Sainte-Anne : l’enquête s’élargit, deux autres patients hospitalisés",
]
# Words that give an English sentence away in a French email.
ENGLISH_TELLS = re.compile(r"\b(the|and|of|with|severity|score|spike|alert|window|median)\b")


def _settings(tmp_path: Path, language: str = "fr") -> Settings:
    return settings_from(
        tmp_path, LABELLED.replace('language = "fr"', f'language = "{language}"') + CELL
    )


def _severity() -> Severity:
    mentions = [
        WindowMention("Le Quotidien du Nord", "news", 1, title, "", -0.6, f"s{i}")
        for i, title in enumerate(TITLES * 4)
    ]
    return assess_severity(
        mentions, volume_score=1.0, enough_volume=True, baseline_negative_share=0.1
    )


def _alert(settings: Settings, **options: Any) -> tuple[str, str]:
    return render_alert_email(
        settings,
        alert_id="al-1",
        signal=SIGNAL,
        level="crise",
        top_mentions=[],
        run_url=None,
        severity=_severity(),
        **options,
    )


def _text(body: str) -> str:
    return re.sub(r"<[^>]+>", " ", body)


def test_french_numbers_have_a_decimal_comma_and_months_their_french_name(
    tmp_path: Path,
) -> None:
    _, body = _alert(_settings(tmp_path))
    text = _text(body)
    assert not re.search(r"\d\.\d", text), "an English decimal point in a French email"
    assert "16 fois la dispersion habituelle" in text
    assert "dimanche 6 décembre 2026 à 13:00 et 14:00 (heure de Toronto)" in text
    assert not ENGLISH_TELLS.search(text.replace("x ", "")), ENGLISH_TELLS.search(text)


def test_english_emails_keep_english_formats(tmp_path: Path) -> None:
    _, body = _alert(_settings(tmp_path, "en"))
    assert "Sunday 6 December 2026 at 13:00 and 14:00 (Toronto time)" in body
    assert "Spike in mentions of “Hôpital Sainte-Anne”" in body


def test_plain_words_come_first_and_the_statistics_last(tmp_path: Path) -> None:
    _, body = _alert(_settings(tmp_path))
    what = body.index("46 mentions entre")
    todo = body.index("Que faire maintenant")
    details = body.index("Détails")
    assert what < todo < details
    # The severity, the deviation and the volume score appear only in the details part.
    for statistic in ("Gravité", "dispersion", "indice de volume"):
        assert body.index(statistic) > details, statistic
    assert "C’est 12 fois plus que d’habitude." in body


def test_crisis_terms_are_shown_as_the_mentions_write_them(tmp_path: Path) -> None:
    severity = _severity()
    assert severity.evidence["crisis_words"] == {
        "hospitalis*": "hospitalisés",
        "enquete*": "enquête",
    } | {
        key: value
        for key, value in severity.evidence["crisis_words"].items()  # type: ignore[attr-defined]
        if key not in ("hospitalis*", "enquete*")
    }
    _, body = _alert(_settings(tmp_path))
    assert "Mots de crise dans les mentions : hospitalisés, enquête" in body
    assert not re.search(r"\b(hospitalis|enquete)\b", body)


def test_the_watch_label_replaces_its_internal_name(tmp_path: Path) -> None:
    subject, body = _alert(_settings(tmp_path))
    assert subject == (
        "[Vigie][CRISE] Laiterie Boréale : pic de mentions « Hôpital Sainte-Anne » (46 en 60 min)"
    )
    assert "« marque »" not in body and "Pic de mentions pour « Hôpital Sainte-Anne »" in body


def test_what_to_do_now_says_who_speaks_where(tmp_path: Path) -> None:
    _, body = _alert(_settings(tmp_path))
    assert "Réunissez la cellule maintenant" in body
    assert "déclaration d’attente" in body
    assert (
        "Qui parle où : Awa Diallo sur facebook et x ; Louis Tremblay sur radio et television. "
        "Personne d’autre ne répond au nom de Laiterie Boréale."
    ) in body


def test_on_duty_members_are_listed_with_phones_and_their_backup(tmp_path: Path) -> None:
    _, body = _alert(_settings(tmp_path))
    assert '<a href="tel:+15145550100">+1 514 555 0100</a>' in body
    assert '<a href="tel:5145550101">514 555 0101</a>' in body
    assert "suppléant·e : Sophie Roy, 514 555 0102" in body


def test_a_member_without_a_phone_is_said_to_have_none(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, LABELLED + CELL.replace('phone = "514 555 0101"\n', ""))
    _, body = _alert(settings)
    assert "pas de téléphone dans la configuration" in body


def test_the_escalation_names_the_level_on_duty_with_phones_in_plain_french(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    alert = StoredAlert("al-1", "marque", "crise", "open", WINDOW_END, 46, 78.3)
    message = escalation_message(
        settings,
        alert,
        Paging("al-1", 1, 2, ("sophie.roy@hopital.example",)),
        reason="severity 78.3/100 (volume 35); volume: 46 mentions in window vs median 4 "
        "(spread 2.50, z=16.0)",
        top_mentions=[
            {"title": TITLES[0], "url": "https://quotidien.example/a", "source": "Le Quotidien"}
        ],
        told=settings.first_level,
    )
    assert message.subject == (
        "[Vigie][ESCALADE][CRISE] Laiterie Boréale : « Hôpital Sainte-Anne » sans prise en "
        "charge depuis 30 min"
    )
    for text in (_text(message.html), message.text):
        assert "Gravité : 78,3 sur 100." in text
        assert "Écart du volume : 16 fois la dispersion habituelle." in text
        assert "514 555 0102" in text  # Sophie, on duty at level 2
        assert "Que faire maintenant" in text
        assert "dimanche 6 décembre 2026 à 14:00 (heure de Toronto)" in text
        assert not re.search(r"\d\.\d", text)
        assert "severity" not in text and "median" not in text


def test_the_two_catalogues_have_the_same_keys() -> None:
    def keys(table: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, value in table.items():
            found |= keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return found

    assert keys(catalogue("fr")) == keys(catalogue("en"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "http://127.0.0.1:4200/runs/flow-run/9",
            "https://vigie.hopital.example/runs/flow-run/9",
            id="a page of the local UI",
        ),
        pytest.param("https://elsewhere.example/x", "https://elsewhere.example/x", id="elsewhere"),
        pytest.param(None, None, id="no link"),
    ],
)
def test_links_to_the_local_ui_are_rebased_on_the_public_address(
    url: str | None, expected: str | None
) -> None:
    rebased = rebase_link(
        url, local_ui="http://127.0.0.1:4200", public_ui="https://vigie.hopital.example"
    )
    assert rebased == expected
    assert rebase_link(url, local_ui="http://127.0.0.1:4200", public_ui=None) == url


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:4200", True),
        ("http://localhost:4200/", True),
        ("http://[::1]:4200", True),
        ("https://vigie.hopital.example", False),
        ("http://10.0.0.5:4200", False),
    ],
)
def test_a_loopback_ui_address_is_told_apart(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize(
    ("public_ui", "api_ui", "warned"),
    [
        pytest.param(None, "http://127.0.0.1:4200", True, id="the API's local UI"),
        pytest.param("http://localhost:4200", None, True, id="a loopback public address"),
        pytest.param("https://vigie.hopital.example", "http://127.0.0.1:4200", False, id="set"),
        pytest.param(None, None, False, id="no UI at all"),
    ],
)
def test_vigie_check_warns_when_the_emails_links_point_at_this_machine(
    public_ui: str | None, api_ui: str | None, warned: bool
) -> None:
    warning = loopback_ui_warning(public_ui, api_ui)
    assert (warning is not None) is warned
    if warning:
        assert warning.startswith("Warning: ") and "[prefect] public_ui_url" in warning
