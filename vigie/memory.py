"""Giving memory back to the system between the steps of a cycle.

CPython frees an object's memory to the C allocator, which keeps the pages for later use: after
a first poll's documents (about 50 MB for 1,000 feeds) are parsed and dropped, the process would
keep that much resident through enrichment, validation and loading. glibc's `malloc_trim`
returns the free pages; elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system (objects freed by reference counting;
    no garbage collection); False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
