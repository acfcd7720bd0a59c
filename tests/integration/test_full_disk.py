"""A full disk under the warehouse: the load fails with one clear error, the warehouse keeps its
last good state, and once there is room again the same load completes.

The disk is a 6 MB tmpfs mounted for the test; mounting needs root (or CAP_SYS_ADMIN), and the
test is skipped, saying so, where the machine does not allow it; the second test, a file size
limit on the writer process, runs everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigie.errors import WarehouseError
from vigie.models import FetchResult, Mention, SourceOutcome
from vigie.settings import Source
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SOURCE = Source(name="Le Quotidien", url="https://quotidien.example/rss.xml")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small disk here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _mentions(cycle: str, count: int) -> list[Mention]:
    return [
        Mention(
            mention_id=f"{cycle}-{n}",
            source=SOURCE.name,
            platform="news",
            tier=3,
            url=f"https://quotidien.example/{cycle}/{n}",
            title=f"Rappel de fromages {n}",
            summary=os.urandom(2000).hex(),  # incompressible: the disk fills for real
            author=None,
            published_at=NOW,
            collected_at=NOW,
            language="fr",
            story_id=f"{cycle}-{n}",
            topics=("marque",),
        )
        for n in range(count)
    ]


def _load(path: Path, cycle: str, mentions: list[Mention]) -> int:
    fetch = FetchResult(
        source=SOURCE.name, url=SOURCE.url, status="ok", started_at=NOW, duration_s=0.1
    )
    with open_warehouse(path) as con:
        store = Store(con)
        store.begin_cycle(cycle, NOW, None)
        outcome = SourceOutcome(fetch, "ok", items=len(mentions))
        return store.load_cycle(cycle, [SOURCE], [outcome], mentions, [], NOW).new_mentions


def _stored(path: Path) -> int:
    with open_warehouse(path) as con:
        return int(con.execute("SELECT count(*) FROM mentions").fetchall()[0][0])


def test_a_full_disk_is_one_clear_error_and_the_load_completes_once_there_is_room(
    small_disk: Path,
) -> None:
    path = small_disk / "vigie.duckdb"
    assert _load(path, "c1", _mentions("c1", 200)) == 200
    burst = _mentions("c2", 3000)  # about 12 MB: more than the disk has

    with pytest.raises(WarehouseError, match="No space left on device"):
        _load(path, "c2", burst)
    assert _stored(path) == 200  # the last good state, whole

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert _load(path, "c2", burst) == 3000
    assert _stored(path) == 3200


_WRITER = """
import resource, signal, sys
from pathlib import Path
from tests.integration.test_full_disk import _load, _mentions
from vigie.errors import WarehouseError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
try:
    print(_load(Path(sys.argv[1]), "c2", _mentions("c2", 3000)))
except WarehouseError as err:
    print(err)
    sys.exit(3)
"""


def test_a_file_size_limit_is_one_clear_error_and_the_load_completes_without_it(
    tmp_path: Path,
) -> None:
    """The same promise where no disk can be mounted: the writer runs under a file size limit
    (`ulimit -f`) a little above the warehouse's size, so its writes fail as on a full disk."""
    path = tmp_path / "vigie.duckdb"
    assert _load(path, "c1", _mentions("c1", 200)) == 200
    limit = path.stat().st_size + 2_000_000
    root = Path(__file__).resolve().parents[2]
    limited = subprocess.run(
        [sys.executable, "-c", _WRITER, str(path), str(limit)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert limited.returncode == 3, limited.stdout + limited.stderr[-2000:]
    assert "File too large" in limited.stdout
    assert "Traceback" not in limited.stderr
    assert _stored(path) == 200  # the last good state, whole

    assert _load(path, "c2", _mentions("c2", 3000)) == 3000
    assert _stored(path) == 3200
