"""The `vigie` command as users run it: a process of its own, its output captured.

Every end-to-end test of the command line runs it through `vigie(...)`: no terminal (stdin is
/dev/null, so nothing waits for an answer), UTF-8 output, the test's environment with
`env` on top and the variables named in `drop` taken out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

VIGIE = [sys.executable, "-m", "cli.main"]


def prefect_api_vars() -> list[str]:
    """The PREFECT_API_* variables of this environment, for a `vigie` that must not reach a
    Prefect server through them."""
    return [key for key in os.environ if key.startswith("PREFECT_API")]


def vigie_env(env: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a `vigie` process: this one's, less `drop`, plus `env`."""
    dropped = set(drop)
    base = {key: value for key, value in os.environ.items() if key not in dropped}
    return {**base, "PYTHONIOENCODING": "utf-8", **(env or {})}


def vigie(
    *args: str,
    env: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    cwd: Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run `vigie ARGS...` to its end; its exit code, stdout and stderr."""
    return subprocess.run(
        [*VIGIE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env=vigie_env(env, drop),
    )
