"""docs/reliability.md names the test that proves each promise: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `tests/x.py::test_name`, a following `::test_other` (same file) or a bare `tests/x.py`.
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)?(?:::(test_\w+))?`")


def _references() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    current = ""
    for path, name in REFERENCE.findall((ROOT / "docs" / "reliability.md").read_text()):
        current = path or current
        if path or name:
            found.append((current, name or None))
    return found


def test_every_test_the_reliability_page_names_exists() -> None:
    references = _references()
    assert len(references) >= 15
    missing = [
        f"{path}::{name}" if name else path
        for path, name in references
        if not (ROOT / path).is_file()
        or (name is not None and f"def {name}(" not in (ROOT / path).read_text())
    ]
    assert missing == []
