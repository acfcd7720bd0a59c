"""docs/configuration.md documents every key of the settings models, with its default.

The models are walked (`Settings`, then every model a field holds, alone or in a tuple), so a key
added to vigie/settings.py without its line in the reference fails here, and so does a default
changed in one place only."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from vigie.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
README = Path(__file__).resolve().parents[2] / "README.md"
# Set by load_settings from the file's own path: not a key of the file.
NOT_KEYS = {("", "config_path")}
_HEADING = re.compile(r"^#+ `\[\[?([\w.]+)\]?\]`\s*$")


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds (alone, optional, or in a tuple), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _tables(model: type[BaseModel], name: str = "") -> list[tuple[str, type[BaseModel]]]:
    """(TOML table name, model) for `model` and every model under it."""
    found = [(name, model)] if name else []
    for key, field in model.model_fields.items():
        sub = _model_in(field.annotation)
        if sub is not None:
            found += _tables(sub, f"{name}.{key}" if name else key)
    return found


TABLES = _tables(Settings)


def _sections() -> dict[str, str]:
    """Table name -> the text under its heading, up to the next heading (outside code)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            heading = _HEADING.match(line)
            current = found.setdefault(heading.group(1), []) if heading else None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def _default_text(field: FieldInfo) -> str:
    """The default as the reference writes it: TOML, in backticks; `required` or `unset`."""
    if field.is_required():
        return "required"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return f"`{value}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, str | Path):
        return f'`"{value}"`'
    if isinstance(value, tuple | list):
        return f"`{list(value)}`"
    if isinstance(value, dict):
        return f"`{value}`"
    raise AssertionError(f"no written form for the default {value!r}")


def test_every_table_of_the_settings_has_a_section() -> None:
    names = [name for name, _ in TABLES]
    # The walk must reach the nested tables, or this test would check too little.
    assert {"organisation", "sources.mapping", "cell.members", "teams", "escalation"} <= set(names)
    missing = [name for name in names if name not in _sections()]
    assert not missing, f"docs/configuration.md has no section for {missing}"


@pytest.mark.parametrize(("table", "model"), TABLES, ids=[name for name, _ in TABLES])
def test_every_key_is_documented_with_its_default(table: str, model: type[BaseModel]) -> None:
    section = _sections()[table]
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", section, re.MULTILINE)
    }
    for key, field in model.model_fields.items():
        assert key in rows, f"[{table}] {key}: not in docs/configuration.md"
        expected = _default_text(field)
        assert expected in rows[key], f"[{table}] {key}: default {expected}, doc {rows[key]!r}"
    extra = set(rows) - set(model.model_fields)
    assert not extra, f"[{table}]: documented keys that do not exist: {extra}"
    assert "```toml" in section, f"[{table}]: no example"


def test_the_top_level_holds_only_tables() -> None:
    keys = {key for key, field in Settings.model_fields.items() if _model_in(field.annotation)}
    assert set(Settings.model_fields) - keys == {key for _, key in NOT_KEYS}


def test_the_sections_the_cell_reads_are_in_french_and_english() -> None:
    sections = _sections()
    for table, french in (
        ("organisation", "Qui est surveillé"),
        ("email", "Comment Vigie envoie ses courriels"),
        ("cell", "La cellule de crise"),
        ("cell.members", "Une table par membre"),
        ("teams", "Les équipes internes"),
    ):
        assert french in sections[table], table


def test_the_readme_links_the_reference_and_starts_with_vigie_init() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "(docs/configuration.md)" in readme
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "vigie init" in quick_start
