"""`vigie serve` starts each run as a fork of a fork server that imported the flows and Great
Expectations once (vigie/serve.py), and pickles a flow by its module's name for that run."""

from __future__ import annotations

import sys

import pytest

from vigie.serve import pickle_flows_by_name, start_runs_as_forks

# A module of the standard library that a fresh interpreter does not import: found in a run's
# process, it shows that the process came from the fork server that imported it.
PRELOADED = "tabnanny"


def _exit_with_what_was_imported() -> None:
    sys.exit(0 if PRELOADED in sys.modules else 3)


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
