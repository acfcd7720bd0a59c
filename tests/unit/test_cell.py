"""Unit tests of `cli.cell.check_cell`: a complete cell is ready, and each thing a cell can
lack is found, with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.cell import CellReport, cell_lines, check_cell, report_lines
from tests.configs import CELL_TOML, MINIMAL_TOML, READY_CELL_TOML, write_toml
from vigie.settings import Settings, load_settings


def cell_from(tmp_path: Path, text: str) -> Settings:
    return load_settings(write_toml(tmp_path, MINIMAL_TOML + text), lenient_cell=True)


def with_phones(text: str) -> str:
    """`text` with a phone for every member who has none (after each member's email)."""
    lines = []
    for line in text.splitlines():
        lines.append(line)
        if line.startswith("email = ") and "awa.diallo" not in line:
            lines.append(f'phone = "+1 514 555 01{len(lines) % 100:02d}"')
    return "\n".join(lines) + "\n"


def report_for(tmp_path: Path, old: str = "", new: str = "") -> CellReport:
    """The report on READY_CELL_TOML changed, everybody with a phone (there, only the lead)."""
    assert old in READY_CELL_TOML
    return check_cell(cell_from(tmp_path, with_phones(READY_CELL_TOML.replace(old, new, 1))))


def codes(report: CellReport, severity: str) -> list[str]:
    return [f.code for f in report.findings if f.severity == severity]


def test_a_complete_cell_is_ready_without_findings(tmp_path: Path) -> None:
    report = report_for(tmp_path)
    assert report.ready
    assert report.findings == ()


def test_an_empty_cell_is_not_ready(tmp_path: Path) -> None:
    report = check_cell(cell_from(tmp_path, ""))
    assert not report.ready
    assert codes(report, "missing") == ["no_members", "no_lead", "no_spokesperson", "no_legal"]
    assert codes(report, "warning") == ["empty_charter", "no_teams"]


@pytest.mark.parametrize(
    ("old", "new", "code", "message"),
    [
        pytest.param(
            'role = "lead"',
            'role = "communications"',
            "no_lead",
            "pas de responsable",
            id="no-lead",
        ),
        pytest.param(
            'role = "spokesperson"',
            'role = "communications"',
            "no_spokesperson",
            "pas de porte-parole",
            id="no-spokesperson",
        ),
        pytest.param(
            'role = "legal"\nlevel = 2\nbackup = "Marc Côté"\n\n[[cell.members]]\n'
            'name = "Marc Côté"\nemail = "marc.cote@laiterie-boreale.example"\nrole = "legal"',
            'role = "executive"\nlevel = 2\nbackup = "Marc Côté"\n\n[[cell.members]]\n'
            'name = "Marc Côté"\nemail = "marc.cote@laiterie-boreale.example"\n'
            'role = "communications"',
            "no_legal",
            "pas de juriste",
            id="no-legal",
        ),
        pytest.param(
            'backup = "Awa Diallo"\nplatforms = ["facebook", "instagram"]',
            'platforms = ["facebook", "instagram"]',
            "no_backup",
            "porte-parole : Louis Tremblay est seul·e à tenir ce rôle et n’a pas de suppléant·e",
            id="spokesperson-without-backup",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            "",
            "no_backup",
            "responsable de la cellule : Awa Diallo est seul·e à tenir ce rôle",
            id="lead-without-backup",
        ),
        pytest.param(
            'email = "louis.tremblay@laiterie-boreale.example"',
            'email = "louis.tremblay@@laiterie-boreale.example"',
            "invalid_address",
            "cell.members[1].email (Louis Tremblay) : 'louis.tremblay@@laiterie-boreale.example' "
            "n’est pas une adresse valable",
            id="invalid-member-address",
        ),
        pytest.param(
            'address = "cellule@laiterie-boreale.example"',
            'address = "cellule@localhost"',
            "invalid_address",
            "cell.address : 'cellule@localhost' n’est pas une adresse valable",
            id="invalid-cell-address",
        ),
        pytest.param(
            '"sales-on@laiterie-boreale.example"',
            '"sales-on.laiterie-boreale.example"',
            "invalid_address",
            "teams[1].emails (Ontario sales) : 'sales-on.laiterie-boreale.example' n’est pas une "
            "adresse valable",
            id="invalid-team-address",
        ),
        pytest.param(
            'level = 3\nbackup = "Awa Diallo"',
            'level = 4\nbackup = "Awa Diallo"',
            "level_gap",
            "le niveau d’escalade 3 n’a personne, alors que le niveau 4 a 1 membre",
            id="level-gap",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Jean Gagnion"',
            "unknown_backup",
            "cell.members[0].backup : 'Jean Gagnion', suppléant·e de Awa Diallo, n’est pas membre",
            id="unknown-backup",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Awa Diallo"',
            "unknown_backup",
            "Awa Diallo ne peut pas être sa propre suppléance",
            id="self-backup",
        ),
    ],
)
def test_each_missing_item_is_found_and_said(
    tmp_path: Path, old: str, new: str, code: str, message: str
) -> None:
    report = report_for(tmp_path, old, new)
    assert not report.ready
    found = [f for f in report.missing if f.code == code]
    assert len(found) == 1, report.findings
    assert message in found[0].message


@pytest.mark.parametrize(
    ("old", "new", "code", "message"),
    [
        pytest.param(
            'role = "operator"',
            'role = "communications"',
            "no_operator",
            "les avis sur les sources (en panne, muettes, dégradées) ne vont à personne de la "
            "cellule, seulement à l’adresse d’envoi de Vigie (vigie@laiterie-boreale.example)",
            id="no-operator",
        ),
        pytest.param(
            "charter = [\n",
            "charter_ = [\n",
            "empty_charter",
            "la charte est vide",
            id="empty-charter",
        ),
        pytest.param(
            'backup = "Awa Diallo"\n\n[[teams]]',
            "\n[[teams]]",
            "no_backup",
            "opérateur : Chloé Martin est seul·e à tenir ce rôle",
            id="operator-without-backup",
        ),
        pytest.param(
            'languages = ["fr", "en"]',
            'languages = ["fr"]',
            "team_language",
            "l’équipe 'Ontario sales' lit l’anglais, mais aucun membre de la cellule ne travaille "
            "dans cette langue",
            id="nobody-speaks-the-team-language",
        ),
    ],
)
def test_warnings_do_not_stop_a_ready_cell(
    tmp_path: Path, old: str, new: str, code: str, message: str
) -> None:
    assert old in READY_CELL_TOML
    text = with_phones(READY_CELL_TOML.replace(old, new, 1))
    if "charter_" in text:  # drop the whole charter, not just its key
        text = (
            text.split("charter_")[0] + "\n[[cell.members]]" + text.split("[[cell.members]]", 1)[1]
        )
    report = check_cell(cell_from(tmp_path, text))
    assert report.ready, report.missing
    assert [f.code for f in report.warnings] == [code]
    assert message in report.warnings[0].message


def test_a_cell_without_teams_or_platforms_gets_warnings(tmp_path: Path) -> None:
    text = with_phones(READY_CELL_TOML).split("[[teams]]")[0]
    text = text.replace('platforms = ["facebook", "x"]', "")
    text = text.replace('platforms = ["facebook", "instagram"]', "")
    report = check_cell(cell_from(tmp_path, text))
    assert report.ready
    assert codes(report, "warning") == ["nobody_authorised", "no_teams"]


def test_the_cell_of_the_test_configs_lacks_backups(tmp_path: Path) -> None:
    report = check_cell(cell_from(tmp_path, CELL_TOML))
    assert not report.ready
    assert codes(report, "missing") == ["no_backup", "no_backup", "no_backup"]
    assert report.findings[0].severity == "missing"


def test_members_without_a_phone_are_named_in_one_warning(tmp_path: Path) -> None:
    report = check_cell(cell_from(tmp_path, READY_CELL_TOML))  # only the lead has a phone
    assert report.ready
    [finding] = report.warnings
    assert finding.code == "no_phone"
    assert finding.message.startswith(
        "pas de téléphone pour Louis Tremblay, Sophie Roy, Marc Côté, Jean Gagnon, Chloé Martin "
        '(phone = "...")'
    )


def test_a_phone_that_cannot_be_dialled_is_missing(tmp_path: Path) -> None:
    report = report_for(tmp_path, 'phone = "+1 514 555 0101"', 'phone = "voir l’accueil"')
    assert not report.ready
    [finding] = report.missing
    assert finding.code == "invalid_phone"
    assert finding.message.startswith(
        "cell.members[0].phone (Awa Diallo) : 'voir l’accueil' n’est pas un numéro de téléphone"
    )


def test_an_english_organisation_reads_the_report_in_english(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace('language = "fr"', 'language = "en"') + CELL_TOML
    settings = load_settings(write_toml(tmp_path, text), lenient_cell=True)
    report = check_cell(settings)
    lines = report_lines(report, "en")
    assert lines[0].startswith("MISSING  cell lead: Awa Diallo is the only one and has no backup")
    assert 'WARNING  no operator (role = "operator"): notices about the sources' in "\n".join(lines)
    assert lines[-1] == "The cell is NOT ready: 3 missing, 4 warnings."
    assert cell_lines(settings)[1:3] == [
        "  Level 1:",
        "    Awa Diallo — cell lead · awa.diallo@laiterie-boreale.example · no phone · speaks en "
        "· answers on facebook, x",
    ]


def test_a_french_organisation_reads_the_report_and_the_cell_in_french(tmp_path: Path) -> None:
    settings = cell_from(tmp_path, READY_CELL_TOML)
    lines = report_lines(check_cell(settings), "fr")
    assert lines == [
        "ATTENTION pas de téléphone pour Louis Tremblay, Sophie Roy, Marc Côté, Jean Gagnon, "
        'Chloé Martin (phone = "...") : en pleine crise, la cellule s’appelle, elle n’attend pas '
        "un courriel",
        "La cellule est prête (1 avertissement).",
    ]
    shown = cell_lines(settings)
    assert shown[0].startswith("Cellule de crise de Laiterie Boréale (")
    assert shown[1:3] == [
        "  Niveau 1 :",
        "    Awa Diallo — responsable de la cellule · awa.diallo@laiterie-boreale.example · "
        "+1 514 555 0101 · parle fr, en · suppléance : Jean Gagnon · répond sur facebook, x",
    ]
    assert "Ce qui est vu est transmis à : cellule@laiterie-boreale.example" in shown
    assert "Charte : 2 règles" in shown
