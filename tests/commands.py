"""The `vigie` command as users run it: a process of its own, its output captured.

Every end-to-end test of the command line runs it through `vigie(...)`: no terminal (stdin is
/dev/null, so nothing waits for an answer), UTF-8 output, the test's environment with
`env` on top and the variables named in `drop` taken out. `vigie_here(...)` runs it the same
way inside the test's process, for tests that a process of its own proves nothing more for.
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


def vigie_here(
    *args: str,
    env: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `vigie ARGS...` inside this process, as `vigie(...)` would run it: same arguments,
    environment, folder, no terminal, and the same result (exit code, stdout, stderr).

    For commands whose test proves nothing more in a process of its own (no signals, no Prefect
    run, no second process): the imports are paid once per test worker, not once per command.
    The environment, folder and standard streams are put back afterwards."""
    import contextlib
    import io

    from cli.main import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    try:
        os.environ.clear()
        os.environ.update(vigie_env(env, drop))
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO("")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's usage errors, an explicit exit
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess([*VIGIE, *args], code, out.getvalue(), err.getvalue())
