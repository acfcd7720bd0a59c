"""`vigie serve` starts each run as a fork of a fork server that imported the flows and Great
Expectations once (vigie/serve.py), and pickles a flow by its module's name for that run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from vigie.serve import end_run_processes, pickle_flows_by_name, start_runs_as_forks

# A module of the standard library that a fresh interpreter does not import: found in a run's
# process, it shows that the process came from the fork server that imported it.
PRELOADED = "tabnanny"


def _exit_with_what_was_imported() -> None:
    sys.exit(0 if PRELOADED in sys.modules else 3)


@pytest.fixture
def own_fork_server() -> Iterator[None]:
    """The test starts the process's fork server itself and stops it after: a server another
    test of this worker left running (xdist may run the tests here in any order) would keep
    the modules it was started with, not the test's."""
    import multiprocessing.forkserver

    multiprocessing.forkserver._forkserver._stop()
    yield
    multiprocessing.forkserver._forkserver._stop()


@pytest.mark.usefixtures("own_fork_server")
def test_a_served_run_starts_as_a_fork_of_the_server_that_imported_the_preloaded_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect.flow_engine as engine

    # What run_flow_in_subprocess asks for (it is given back at the end of the test).
    monkeypatch.setattr(engine, "multiprocessing", engine.multiprocessing)
    start_runs_as_forks((PRELOADED,))
    context = engine.multiprocessing.get_context("spawn")
    assert context.get_start_method() == "forkserver"
    process = context.Process(target=_exit_with_what_was_imported)
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0


def test_a_flow_of_an_importable_module_is_pickled_by_its_name_with_its_annotations() -> None:
    import cloudpickle  # type: ignore[import-untyped]
    from prefect.flows import Flow

    from flows.watch_cycle import watch_cycle

    pickle_flows_by_name()
    # By name, the run's process finds the flow its module defines, whose parameters name
    # ConfigPath (taken by value, the function kept only the globals its code reads).
    assert cloudpickle.loads(cloudpickle.dumps(watch_cycle)) is watch_cycle
    # A flow no module holds under its name is pickled whole, as before.
    other = Flow(lambda: None, name="made-here")
    copy = cloudpickle.loads(cloudpickle.dumps(other))
    assert copy is not other and copy.name == "made-here"


def _sleep_ignoring_sigterm(ready: Any) -> None:
    import signal
    import time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(600)


def _sleep(ready: Any) -> None:
    import time

    ready.set()
    time.sleep(600)


@pytest.mark.usefixtures("own_fork_server")
def test_run_processes_left_when_serving_stopped_are_ended_even_one_deaf_to_sigterm() -> None:
    """A run's process still alive after serving stopped (a second Ctrl-C cut Prefect's
    shutdown short) would keep `vigie serve` from exiting: it is ended, by SIGKILL if SIGTERM
    is not enough."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    started = [context.Event() for _ in range(2)]
    runs = [
        context.Process(target=target, args=(ready,))
        for target, ready in zip((_sleep, _sleep_ignoring_sigterm), started, strict=True)
    ]
    for run, ready in zip(runs, started, strict=True):
        run.start()
        assert ready.wait(120)
    ended = end_run_processes(grace_s=1)
    assert sorted(ended) == sorted(run.pid for run in runs)
    assert [run.is_alive() for run in runs] == [False, False]
    # SIGTERM ended the first; the second, deaf to it, took a SIGKILL.
    assert [run.exitcode for run in runs] == [-15, -9]
