"""Publishing to the Prefect UI is best effort: with the API gone, an artifact is skipped with
one warning, without Prefect's minute of retries, and the caller goes on; once the API is back,
the runs an outage left Running are recorded as they really ended."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from tasks.publish.ui import (
    api_answers,
    publish_markdown,
    publish_progress,
    publish_table,
    record_unrecorded_runs,
)
from vigie.localservers import free_port
from warehouse.connection import open_warehouse
from warehouse.store import Store


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_with_the_api_gone_nothing_is_published_and_nothing_fails() -> None:
    # A handler of its own: whether Prefect's logging setup has run decides where caplog and
    # capfd would see the module's warnings.
    kept, logger = _Kept(), logging.getLogger("tasks.publish.ui")
    gone = f"http://127.0.0.1:{free_port()}/api"
    assert not api_answers(gone)
    logger.addHandler(kept)
    try:
        # Were the probe skipped, 9 retries with Prefect's back-off would make this test hang.
        with temporary_settings(updates={PREFECT_API_URL: gone, PREFECT_CLIENT_MAX_RETRIES: 9}):
            assert publish_markdown("watch-cycle-summary", "# Cycle", "a summary") is False
            assert publish_table("top-stories", [{"title": "t"}], "stories") is False
            assert publish_progress("replay-progress", "progress") is None
    finally:
        logger.removeHandler(kept)
    warnings = kept.messages
    assert len(warnings) == 3
    assert all(gone in w and "not published in the Prefect UI" in w for w in warnings)


def test_with_the_api_up_the_artifact_is_published(prefect_harness: str) -> None:
    from prefect import flow, get_client

    @flow
    def publishing() -> bool:
        return publish_markdown("ui-publish-check", "# Published", "a check")

    assert api_answers(prefect_harness)
    assert publishing() is True
    with get_client(sync_client=True) as client:
        latest = client.read_latest_artifacts()
    assert any(a.key == "ui-publish-check" and a.data == "# Published" for a in latest)


def store_runs(path: Path) -> list[tuple[str, str, datetime | None]]:
    with open_warehouse(path) as con:
        return Store(con).unrecorded_runs()


def test_runs_left_running_by_an_outage_are_recorded_as_they_ended(
    prefect_harness: str, tmp_path: Path
) -> None:
    """Three cycles `vigie run` could not record: one finished (Completed), one that did not
    (Crashed), one whose run the server no longer has (forgotten). A run already final is left
    as it is. Each is recorded once: a second call finds nothing to do."""
    from prefect import flow, get_client
    from prefect.states import Failed, Running

    @flow(name="watch-cycle-outage-check")
    def cycle() -> None:
        pass

    now = datetime.now(UTC)
    path = tmp_path / "vigie.duckdb"
    with get_client(sync_client=True) as client:
        runs = [client.create_flow_run(cycle, state=Running()) for _ in range(3)]
        client.set_flow_run_state(runs[2].id, Failed(message="failed for real"), force=True)
        with open_warehouse(path) as con:
            store = Store(con)
            for n, run_id in enumerate([*(str(r.id) for r in runs), str(uuid4())]):
                store.begin_cycle(f"c{n}", now, run_id)
                store.note_unrecorded_run(run_id, now)
            store.finish_cycle("c0", now, {"cycle_id": "c0"})
        lines = record_unrecorded_runs(path, store_runs(path))
        assert lines == [
            "the run of cycle c0, left Running when the Prefect server went away, is now "
            "recorded as Completed",
            "the run of cycle c1, left Running when the Prefect server went away, is now "
            "recorded as Crashed",
        ]
        states = [client.read_flow_run(r.id).state for r in runs]
    assert [s.type.value if s else None for s in states] == ["COMPLETED", "CRASHED", "FAILED"]
    assert states[0] is not None and "while the Prefect server was away" in str(states[0].message)
    assert record_unrecorded_runs(path, store_runs(path)) == []
    assert store_runs(path) == []
