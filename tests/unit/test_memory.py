"""Giving freed memory back to the system (vigie/memory.py), in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_FREE_DOCUMENTS = """
import os, sys
from vigie.memory import release_free_memory

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

documents = [os.urandom(50_000) for _ in range(2000)]  # 100 MB, as a first poll's bodies
kept = documents[::20]  # a few live on (outcomes, mentions), pinning the heap between them
del documents
before = rss_mb()
released = release_free_memory()
print(released, round(before - rss_mb()))
"""


def test_the_pages_of_freed_documents_go_back_to_the_system() -> None:
    if not Path("/proc/self/statm").exists():
        return  # Linux only, as malloc_trim
    done = subprocess.run(
        [sys.executable, "-c", _FREE_DOCUMENTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    released, freed_mb = done.stdout.split()
    assert released == "True"
    assert int(freed_mb) > 50
