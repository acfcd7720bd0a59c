"""`vigie detect-series` writes the timestamps as its input gave them: a cell a spreadsheet would
run as a formula is written with a leading single quote (OWASP's rule for CSV injection)."""

from __future__ import annotations

import csv
from pathlib import Path

from tasks.detect.series import write_scores


def test_a_timestamp_a_spreadsheet_would_run_is_written_inert(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    write_scores(out, ['=HYPERLINK("https://evil.example")', "2026-11-01 00:05", "@x"], [0, 1, 0])
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [r[0] for r in rows] == [
        "timestamp",
        '\'=HYPERLINK("https://evil.example")',
        "2026-11-01 00:05",
        "'@x",
    ]
