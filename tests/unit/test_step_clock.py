"""The cycle's clock: time per step, and the collection's own duration (fetch to load)."""

from __future__ import annotations

import time

from tasks.publish.report import StepClock


def test_duration_runs_from_the_first_fetch_to_the_end_of_loading() -> None:
    clock = StepClock()
    with clock.step("prepare"):
        time.sleep(0.05)
    with clock.step("fetch"):
        pass
    with clock.step("load"):
        pass
    with clock.step("send"):
        time.sleep(0.05)
    span = clock.between("fetch", "load")
    assert 0 <= span < clock.elapsed - 0.09  # prepare and send are outside it
    assert span >= clock.steps["fetch"] + clock.steps["load"]
    assert clock.between("fetch", "missing") == 0.0
