"""The `vigie` command as users run it: a process of its own, its output captured.

Every end-to-end test of the command line runs it through `vigie(...)`: no terminal (stdin is
/dev/null, so nothing waits for an answer), UTF-8 output, the test's environment with
`env` on top and the variables named in `drop` taken out. `vigie_here(...)` runs it the same
way inside the test's process, for tests that a process of its own proves nothing more for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

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
    input: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run `vigie ARGS...` inside this process, as `vigie(...)` would run it: same arguments,
    environment, folder, no terminal (stdin is `input`), and the same result (exit code,
    stdout, stderr).

    For commands whose test proves nothing more in a process of its own (no signals, no second
    process, no fresh imports, no os._exit: `vigie run --once` with its Prefect server down
    ends so): the imports are paid once per test worker, not once per command.
    A Prefect run goes to the Prefect server of this process's settings (`prefect_harness`), or
    to the one the PREFECT_* variables of `env` name; log lines shown on the console (Prefect's
    among them) are in its stderr. The environment, folder, standard streams, console log
    handlers and Prefect settings are put back afterwards."""
    import io

    from prefect.logging.configuration import ensure_logging_setup

    from cli.main import main

    # Prefect reads its settings and binds its log handlers to the stderr of the moment once per
    # process: here, before this command's environment and captured stderr, not during them
    # (they would stay those of this command for every later test of the worker).
    ensure_logging_setup()
    drop = list(drop)
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    saved_stdin = sys.stdin
    prefect_settings = _prefect_settings(env or {}, drop)
    try:
        os.environ.clear()
        os.environ.update(vigie_env(env, drop))
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO(input)
        with (
            prefect_settings,
            _console_logs_to(err),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
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


def _prefect_settings(
    env: Mapping[str, str], drop: Iterable[str]
) -> contextlib.AbstractContextManager[object]:
    """Prefect's settings as a `vigie` process given `env` and `drop` would read them.

    Prefect reads its environment once, at import: here the PREFECT_* settings that `env` sets
    are put over this process's settings, and those `drop` removes are back to their defaults,
    for the time of the command."""
    names = [name for name in (*env, *drop) if name.startswith("PREFECT_")]
    if not names:
        return contextlib.nullcontext()
    import prefect.settings
    from prefect.settings.legacy import Setting

    def setting(name: str) -> Setting | None:
        found = getattr(prefect.settings, name, None)
        return found if isinstance(found, Setting) else None

    updates = {found: value for name, value in env.items() if (found := setting(name)) is not None}
    defaults = [found for name in drop if name not in env and (found := setting(name)) is not None]
    return prefect.settings.temporary_settings(updates=updates, restore_defaults=defaults)


@contextlib.contextmanager
def _console_logs_to(stream: TextIO) -> Iterator[None]:
    """The log handlers that write to stderr write to `stream` meanwhile: they took stderr when
    logging was set up, before the command's stderr was captured (pytest's own handlers keep
    their streams). Prefect's handler writes through a rich Console of its own, pointed at
    `stream` too."""
    stderr = {id(sys.stderr), id(sys.__stderr__)}
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {
        handler
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in stderr
    }
    saved = [(handler, handler.stream, getattr(handler, "console", None)) for handler in handlers]
    for handler, _, console in saved:
        handler.setStream(stream)
        if console is not None:
            console.file = stream
    try:
        yield
    finally:
        for handler, previous, console in saved:
            handler.setStream(previous)
            if console is not None:
                console.file = previous
