"""`vigie drill` as a user runs it: wrong input is one clear line before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ConfigWriter


def _vigie(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigie.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["drill", "X"],
            "vigie: the drill topic 'drill-x' is also a watch name in the configuration: "
            "choose another drill name",
        ),
        (["drill", "Y", "--ack-wait", "0"], "vigie: --ack-wait must be between 1 and 1440 minutes"),
        (["drill", " "], "vigie: the drill's name must have 1 to 80 characters"),
    ],
    ids=["topic-is-a-watch", "wait-out-of-bounds", "blank-name"],
)
def test_a_drill_that_cannot_run_is_one_line_and_exit_2(
    write_config: ConfigWriter, args: list[str], line: str
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/feed.xml"}],
        smtp_port=25,
        extra='\n[[watch]]\nname = "drill-x"\nquery = "exercice"\n',
    )
    result = _vigie("--config", str(config), *args)
    assert result.returncode == 2
    assert result.stderr.strip() == line
    assert not (config.parent / "wh").exists()  # nothing was started or written
