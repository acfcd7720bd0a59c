"""What the commands the crisis cell uses (`vigie ack`, `readiness`, `drill`, `incident`, and
what `vigie serve` says of the runs it leaves) print, in the organisation's language (French or
English). Expected errors stay one English line, as every command's.

The texts are the `[cli.*]` tables of the emails' one catalogue (tasks/notify/catalogue)."""

from __future__ import annotations

from typing import Any

from tasks.notify.rendering import LOCALES, Texts, catalogue


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"ack": {"done": ...}}` as `{"ack.done": ...}`; a table of plural forms stays out
    (`plural` reads it)."""
    found: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            if "other" not in value:
                found.update(_flatten(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = str(value)
    return found


WORDS: dict[str, dict[str, str]] = {
    language: _flatten(catalogue(language)["cli"]) for language in LOCALES
}


def say(language: str, key: str, **values: object) -> str:
    """The text `key` in `language` (English when the language has none), filled in."""
    text = WORDS.get(language, {}).get(key) or WORDS["en"][key]
    return text.format(**values)


def count(language: str, key: str, n: int) -> str:
    """A count with its plural form ("1 point de situation", "2 situation reports")."""
    return Texts(language if language in WORDS else "en").plural(f"cli.{key}", n)
