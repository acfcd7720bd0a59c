"""Unit tests of the crisis cell's keys in the configuration: backups, languages, the charter,
the cell's address, and each team's cadence and language."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configs import CELL_TOML, MINIMAL_TOML, READY_CELL_TOML, settings_from, write_toml
from vigie.errors import ConfigError
from vigie.settings import MAX_CHARTER_RULE_CHARS, load_settings


def config_error(tmp_path: Path, text: str) -> str:
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value).removeprefix(f"{path}: ")


def test_the_existing_cell_keys_still_load_with_the_new_defaults(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    awa = settings.cell.members[0]
    assert awa.backup is None and awa.languages is None
    assert settings.member_languages(awa) == ("fr",)
    assert settings.cell.charter == () and settings.cell.address is None


def test_a_complete_cell_loads_backups_languages_charter_and_teams(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + READY_CELL_TOML)
    awa = settings.member("Awa Diallo")
    assert awa is not None and awa.backup == "Jean Gagnon" and awa.phone == "+1 514 555 0101"
    assert settings.member_languages(awa) == ("fr", "en")
    assert settings.cell.address == "cellule@laiterie-boreale.example"
    assert settings.cell.charter[1] == "Nous ne supprimons jamais un commentaire critique."
    clientele, sales = settings.teams
    assert settings.team_language(clientele) == "fr"  # the organisation's
    assert settings.team_cron(clientele) == "0 9 1 * *"  # schedule.readiness_cron
    assert settings.team_language(sales) == "en" and settings.team_cron(sales) == "0 8 * * 1"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Jean Gagnion"',
            "cell: members[0].backup: 'Jean Gagnion' is not a member of the cell",
            id="unknown-backup",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Awa Diallo"',
            "cell: members[0].backup: 'Awa Diallo' cannot back up itself",
            id="self-backup",
        ),
        pytest.param(
            'languages = ["fr", "en"]',
            'languages = ["fr", "de"]',
            "cell.members[0].languages[1]: Input should be 'fr' or 'en'",
            id="unknown-language",
        ),
        pytest.param(
            'languages = ["fr", "en"]',
            "languages = []",
            "cell.members[0].languages: lists no language",
            id="no-language",
        ),
        pytest.param(
            'email = "awa.diallo@laiterie-boreale.example"',
            'email = "awa.diallo@"',
            "cell.members[0].email: value is not a valid email address",
            id="invalid-member-address",
        ),
        pytest.param(
            'address = "cellule@laiterie-boreale.example"',
            'address = "cellule at laiterie"',
            "cell.address: value is not a valid email address",
            id="invalid-cell-address",
        ),
        pytest.param(
            '"sales-on@laiterie-boreale.example"',
            '"sales-on@laiterie boreale"',
            "teams[1].emails: value is not a valid email address",
            id="invalid-team-address",
        ),
        pytest.param(
            'cron = "0 8 * * 1"',
            'cron = "0 25 * * 1"',
            "teams[1].cron: is not a valid cron expression (Bad hour)",
            id="bad-team-cron",
        ),
        pytest.param(
            'cron = "0 8 * * 1"',
            'cron = "every monday"',
            "teams[1].cron: must have five fields",
            id="not-cron",
        ),
        pytest.param(
            'language = "en"\ncron',
            'language = "es"\ncron',
            "teams[1].language: Input should be 'fr' or 'en'",
            id="team-language",
        ),
        pytest.param(
            'name = "Ontario sales"',
            'name = "Service à la clientèle"',
            "(top level): teams[1].name: 'Service à la clientèle' is used twice",
            id="team-twice",
        ),
        pytest.param(
            'name = "Marc Côté"',
            'name = "Sophie Roy"',
            "cell: members[3].name: 'Sophie Roy' is used twice",
            id="member-twice",
        ),
        pytest.param(
            'charter = [\n    "Nous répondons',
            'charter = [\n    "   ",\n    "Nous répondons',
            "cell.charter: rule 1 is blank",
            id="blank-rule",
        ),
        pytest.param(
            'phone = "+1 514 555 0101"',
            'phone = "appelez le standard"',
            "cell.members[0].phone: is not a phone number: digits, spaces, +, -, parentheses",
            id="phone-with-words",
        ),
        pytest.param(
            'phone = "+1 514 555 0101"',
            'phone = "+1"',
            "cell.members[0].phone: is not a phone number: at least 3 digits",
            id="phone-too-short",
        ),
        pytest.param(
            "[cell]\n",
            '[cell]\nadress = "x@y.example"\n',
            "cell.adress: unknown key",
            id="misspelt-key",
        ),
    ],
)
def test_an_invalid_cell_key_is_named(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = MINIMAL_TOML + READY_CELL_TOML
    assert old in text
    assert config_error(tmp_path, text.replace(old, new, 1)).startswith(expected)


def test_the_charter_is_short(tmp_path: Path) -> None:
    long_rule = "x" * (MAX_CHARTER_RULE_CHARS + 1)
    text = (MINIMAL_TOML + READY_CELL_TOML).replace(
        "charter = [", f'charter = [\n    "{long_rule}",'
    )
    assert config_error(tmp_path, text).startswith(
        f"cell.charter[0]: String should have at most {MAX_CHARTER_RULE_CHARS} characters"
    )
    thirteen = ", ".join(f'"règle {n}"' for n in range(13))
    text = MINIMAL_TOML + f"[cell]\ncharter = [{thirteen}]\n"
    assert config_error(tmp_path, text).startswith(
        "cell.charter: Tuple should have at most 12 items"
    )


def test_a_bad_readiness_cron_is_named(tmp_path: Path) -> None:
    text = MINIMAL_TOML + '[schedule]\nreadiness_cron = "0 9 31 2 *"\n'
    assert config_error(tmp_path, text).startswith(
        "schedule.readiness_cron: is not a valid cron expression"
    )


def test_lenient_loading_keeps_bad_addresses_and_backups_for_the_cell_check(
    tmp_path: Path,
) -> None:
    text = (MINIMAL_TOML + READY_CELL_TOML).replace(
        'email = "awa.diallo@laiterie-boreale.example"', 'email = "awa.diallo@"'
    )
    text = text.replace('backup = "Jean Gagnon"', 'backup = "Personne"')
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError):
        load_settings(path)
    settings = load_settings(path, lenient_cell=True)
    awa = settings.cell.members[0]
    assert awa.email == "awa.diallo@" and awa.backup == "Personne"
    # Everything else is still checked.
    with pytest.raises(ConfigError, match=r"cell\.members\[0\]\.level"):
        load_settings(
            write_toml(tmp_path, text.replace("level = 1", "level = 0", 1)), lenient_cell=True
        )


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        pytest.param("+33 (0)1 23 45 67 89", "+33 (0)1 23 45 67 89", id="france"),
        pytest.param("514.555.0101", "514.555.0101", id="dots"),
        pytest.param("  +1 514-555-0101  ", "+1 514-555-0101", id="spaces-trimmed"),
        pytest.param("4421", "4421", id="extension"),
    ],
)
def test_a_phone_is_checked_loosely(tmp_path: Path, written: str, kept: str) -> None:
    text = (MINIMAL_TOML + READY_CELL_TOML).replace("+1 514 555 0101", written)
    awa = settings_from(tmp_path, text).member("Awa Diallo")
    assert awa is not None and awa.phone == kept


def test_source_notices_go_to_the_operators_only(tmp_path: Path) -> None:
    ready = settings_from(tmp_path, MINIMAL_TOML + READY_CELL_TOML)
    assert ready.source_notice_recipients == ("chloe.martin@laiterie-boreale.example",)
    # Without an operator: Vigie's own mailbox, never the lead or the spokesperson; the
    # watchdog (the whole watch stopped) still reaches level 1.
    plain = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    assert plain.source_notice_recipients == ("vigie@laiterie-boreale.example",)
    assert [m.name for m in plain.operators] == ["Awa Diallo", "Louis Tremblay"]
