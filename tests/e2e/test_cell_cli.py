"""`vigie cell check` and `vigie cell show` as a user runs them: real processes, exit codes."""

from __future__ import annotations

from pathlib import Path

from tests.commands import vigie_here
from tests.configs import CELL_TOML, MINIMAL_TOML, READY_CELL_TOML, write_toml


def test_a_ready_cell_passes_the_check(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML + READY_CELL_TOML)
    result = vigie_here("--config", str(config), "cell", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    # In the organisation's language (French), with the members who have no phone flagged.
    assert "La cellule est prête (1 avertissement)." in result.stdout
    assert "ATTENTION pas de téléphone pour Louis Tremblay, Sophie Roy, Marc Côté" in result.stdout
    assert "  Niveau 3 :\n    Jean Gagnon — direction" in result.stdout
    assert "Ce qui est vu est transmis à : cellule@laiterie-boreale.example" in result.stdout


def test_a_cell_missing_things_fails_the_check_with_one_line_each(tmp_path: Path) -> None:
    text = (MINIMAL_TOML + CELL_TOML).replace(
        'email = "sophie.roy@laiterie-boreale.example"', 'email = "sophie.roy@"'
    )
    config = write_toml(tmp_path, text)
    result = vigie_here("--config", str(config), "cell", "check")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    missing = [line for line in lines if line.startswith("MANQUE ")]
    assert len(missing) == 4
    assert any(
        "cell.members[2].email (Sophie Roy) : 'sophie.roy@' n’est pas une adresse valable" in m
        for m in missing
    )
    assert 'pas d’opérateur (role = "operator")' in result.stdout
    assert lines[-1] == "La cellule n’est PAS prête : 4 éléments manquants, 4 avertissements."
    # The same file is refused by every other command, naming the key.
    check = vigie_here("--config", str(config), "check")
    assert check.returncode == 2
    assert "cell.members[2].email: value is not a valid email address" in check.stderr


def test_a_configuration_error_still_exits_2(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML + READY_CELL_TOML.replace("level = 3", "level = 0"))
    result = vigie_here("--config", str(config), "cell", "check")
    assert result.returncode == 2
    assert "cell.members[4].level" in result.stderr
    assert result.stdout == ""


def test_cell_show_lists_the_charter_and_teams(tmp_path: Path) -> None:
    config = write_toml(tmp_path, MINIMAL_TOML + READY_CELL_TOML)
    result = vigie_here("--config", str(config), "cell", "show")
    assert result.returncode == 0, result.stderr
    assert "  2. Nous ne supprimons jamais un commentaire critique." in result.stdout
    assert (
        "  Ontario sales [en, cron '0 8 * * 1'] : sales-on@laiterie-boreale.example"
        in result.stdout
    )


def test_an_english_organisation_reads_the_cell_check_in_english(tmp_path: Path) -> None:
    text = (MINIMAL_TOML + READY_CELL_TOML).replace('language = "fr"', 'language = "en"', 1)
    config = write_toml(tmp_path, text)
    result = vigie_here("--config", str(config), "cell", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  Level 1:\n    Awa Diallo — cell lead" in result.stdout
    assert "WARNING  no phone for Louis Tremblay, Sophie Roy" in result.stdout
    assert result.stdout.endswith("The cell is ready (1 warning).\n")


def test_vigie_check_says_when_source_notices_have_no_operator(tmp_path: Path) -> None:
    without = vigie_here("--config", str(write_toml(tmp_path, MINIMAL_TOML + CELL_TOML)), "check")
    assert without.returncode == 0, without.stderr
    assert (
        'Warning: no operator in the cell (role = "operator"): notices about the sources have no '
        "recipient in the cell and go only to vigie@laiterie-boreale.example (email.sender)."
    ) in without.stdout
    ready = write_toml(tmp_path, MINIMAL_TOML + READY_CELL_TOML, name="ready.toml")
    with_operator = vigie_here("--config", str(ready), "check")
    assert with_operator.returncode == 0, with_operator.stderr
    assert "no operator" not in with_operator.stdout
