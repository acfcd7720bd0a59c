"""Unit tests of `tasks.cell.check_cell`: a complete cell is ready, and each thing a cell can
lack is found, with a message that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.cell import CellReport, check_cell
from tests.configs import CELL_TOML, MINIMAL_TOML, READY_CELL_TOML, write_toml
from vigie.settings import Settings, load_settings


def cell_from(tmp_path: Path, text: str) -> Settings:
    return load_settings(write_toml(tmp_path, MINIMAL_TOML + text), lenient_cell=True)


def report_for(tmp_path: Path, old: str = "", new: str = "") -> CellReport:
    assert old in READY_CELL_TOML
    return check_cell(cell_from(tmp_path, READY_CELL_TOML.replace(old, new, 1)))


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
            'role = "lead"', 'role = "communications"', "no_lead", "no lead", id="no-lead"
        ),
        pytest.param(
            'role = "spokesperson"',
            'role = "communications"',
            "no_spokesperson",
            "no spokesperson",
            id="no-spokesperson",
        ),
        pytest.param(
            'role = "legal"\nlevel = 2\nbackup = "Marc Côté"\n\n[[cell.members]]\n'
            'name = "Marc Côté"\nemail = "marc.cote@laiterie-boreale.example"\nrole = "legal"',
            'role = "executive"\nlevel = 2\nbackup = "Marc Côté"\n\n[[cell.members]]\n'
            'name = "Marc Côté"\nemail = "marc.cote@laiterie-boreale.example"\n'
            'role = "communications"',
            "no_legal",
            "no legal counsel",
            id="no-legal",
        ),
        pytest.param(
            'backup = "Awa Diallo"\nplatforms = ["facebook", "instagram"]',
            'platforms = ["facebook", "instagram"]',
            "no_backup",
            "spokesperson: Louis Tremblay is the only one and has no backup",
            id="spokesperson-without-backup",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            "",
            "no_backup",
            "cell lead: Awa Diallo is the only one and has no backup",
            id="lead-without-backup",
        ),
        pytest.param(
            'email = "louis.tremblay@laiterie-boreale.example"',
            'email = "louis.tremblay@@laiterie-boreale.example"',
            "invalid_address",
            "cell.members[1].email (Louis Tremblay): 'louis.tremblay@@laiterie-boreale.example' "
            "is not valid",
            id="invalid-member-address",
        ),
        pytest.param(
            'address = "cellule@laiterie-boreale.example"',
            'address = "cellule@localhost"',
            "invalid_address",
            "cell.address: 'cellule@localhost' is not valid",
            id="invalid-cell-address",
        ),
        pytest.param(
            '"sales-on@laiterie-boreale.example"',
            '"sales-on.laiterie-boreale.example"',
            "invalid_address",
            "teams[1].emails (Ontario sales): 'sales-on.laiterie-boreale.example' is not valid",
            id="invalid-team-address",
        ),
        pytest.param(
            'level = 3\nbackup = "Awa Diallo"',
            'level = 4\nbackup = "Awa Diallo"',
            "level_gap",
            "escalation level 3 has nobody, but level 4 has 1 member",
            id="level-gap",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Jean Gagnion"',
            "unknown_backup",
            "cell.members[0].backup: Awa Diallo's backup 'Jean Gagnion' is not a member",
            id="unknown-backup",
        ),
        pytest.param(
            'backup = "Jean Gagnon"',
            'backup = "Awa Diallo"',
            "unknown_backup",
            "Awa Diallo cannot be their own backup",
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
            "no operator",
            id="no-operator",
        ),
        pytest.param(
            "charter = [\n",
            "charter_ = [\n",
            "empty_charter",
            "the charter is empty",
            id="empty-charter",
        ),
        pytest.param(
            'backup = "Awa Diallo"\n\n[[teams]]',
            "\n[[teams]]",
            "no_backup",
            "operator: Chloé Martin is the only one and has no backup",
            id="operator-without-backup",
        ),
        pytest.param(
            'languages = ["fr", "en"]',
            'languages = ["fr"]',
            "team_language",
            "team 'Ontario sales' reads English, but no member of the cell works in it",
            id="nobody-speaks-the-team-language",
        ),
    ],
)
def test_warnings_do_not_stop_a_ready_cell(
    tmp_path: Path, old: str, new: str, code: str, message: str
) -> None:
    text = READY_CELL_TOML.replace(old, new, 1)
    if "charter_" in text:  # drop the whole charter, not just its key
        text = (
            text.split("charter_")[0] + "\n[[cell.members]]" + text.split("[[cell.members]]", 1)[1]
        )
    report = check_cell(cell_from(tmp_path, text))
    assert report.ready, report.missing
    assert [f.code for f in report.warnings] == [code]
    assert message in report.warnings[0].message


def test_a_cell_without_teams_or_platforms_gets_warnings(tmp_path: Path) -> None:
    text = READY_CELL_TOML.split("[[teams]]")[0].replace('platforms = ["facebook", "x"]', "")
    text = text.replace('platforms = ["facebook", "instagram"]', "")
    report = check_cell(cell_from(tmp_path, text))
    assert report.ready
    assert codes(report, "warning") == ["nobody_authorised", "no_teams"]


def test_the_cell_of_the_test_configs_lacks_backups(tmp_path: Path) -> None:
    report = check_cell(cell_from(tmp_path, CELL_TOML))
    assert not report.ready
    assert codes(report, "missing") == ["no_backup", "no_backup", "no_backup"]
    assert report.findings[0].severity == "missing"
