"""What the Prefect UI shows of a run (markdown, table and progress artifacts) is a view of what
the warehouse already holds, so publishing it is best effort: when the Prefect API has stopped
answering (a server restarted or killed during a cycle), the artifact is skipped with one
warning line instead of failing a run whose data is loaded and whose emails are sent.

The API is probed first with a short timeout, because the Prefect client retries a refused
connection with a growing back-off (PREFECT_CLIENT_MAX_RETRIES, about a minute by default) and
a cycle publishes four artifacts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

LOG = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 2.0


def api_url() -> str | None:
    """The API this process reports to (a temporary server's inside its flow runs)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def api_answers(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the Prefect API at `url` answers its health check within `timeout_s`."""
    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def _warn(what: str, reason: str) -> None:
    message = f"{what} not published in the Prefect UI ({reason}); the warehouse holds it all"
    try:
        from prefect import get_run_logger

        get_run_logger().warning(message)
    except Exception:  # outside a run: the module's logger
        LOG.warning(message)


def publish(what: str, create: Callable[[], Any]) -> Any | None:
    """Call `create` (an artifact's creation) when the API answers; its result, or None with
    one warning when the API is gone or refuses."""
    from prefect.exceptions import PrefectHTTPStatusError

    url = api_url()
    if url is not None and not api_answers(url):
        _warn(what, f"the Prefect API at {url} does not answer")
        return None
    try:
        return create()
    except (httpx.HTTPError, PrefectHTTPStatusError) as err:
        _warn(what, f"the Prefect API failed: {type(err).__name__}")
        return None


def publish_markdown(key: str, markdown: str, description: str) -> bool:
    """A markdown artifact under `key`; False when it could not be published."""
    from prefect.artifacts import create_markdown_artifact

    done = publish(
        f"artifact {key}",
        lambda: create_markdown_artifact(key=key, markdown=markdown, description=description),
    )
    return done is not None


def publish_table(key: str, table: list[dict[str, Any]], description: str) -> bool:
    """A table artifact under `key`; False when it could not be published."""
    from prefect.artifacts import create_table_artifact

    done = publish(
        f"artifact {key}",
        lambda: create_table_artifact(key=key, table=table, description=description),
    )
    return done is not None


def tag_flow_run(flow_run_id: UUID | str | None, tags: Sequence[str]) -> bool:
    """Add `tags` to the flow run's own (the run list filters by them); False when there is
    no run, no tag, or the API is gone or refuses."""
    from prefect import get_client

    if flow_run_id is None or not tags:
        return False

    def update() -> bool:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(str(flow_run_id)))
            client.update_flow_run(run.id, tags=list(dict.fromkeys([*run.tags, *tags])))
        return True

    return publish("run tags", update) is not None


def publish_progress(key: str, description: str) -> UUID | None:
    """A progress artifact at 0 %; its id, or None when it could not be published."""
    from prefect.artifacts import create_progress_artifact

    created = publish(
        f"artifact {key}",
        lambda: create_progress_artifact(progress=0.0, key=key, description=description),
    )
    return created if isinstance(created, UUID) else None


def update_progress(artifact_id: UUID | None, progress: float) -> None:
    """Move a progress artifact; nothing when it was not published or the API is gone."""
    from prefect.artifacts import update_progress_artifact

    if artifact_id is not None:
        publish("progress", lambda: update_progress_artifact(artifact_id, progress=progress))


class _NoApiTraceback(logging.Filter):
    """Keeps the line, drops the traceback, of a run's log record about the Prefect API being
    unreachable: the command says in one line what that means for the cycle."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], httpx.TransportError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_api_outage_logs() -> None:
    """No traceback in the output when the Prefect API goes away during a run (the engine
    logs one when it cannot record the run's final state), and no stderr dump from the
    background log shipper: the command reports the outage itself."""
    logging.getLogger("prefect.flow_runs").addFilter(_NoApiTraceback())
    # Prefect's log shipper writes "--- Error logging to API ---" to stderr unless
    # the standard library is told to stay quiet about handler errors.
    logging.raiseExceptions = False


def record_unrecorded_runs(
    warehouse_path: Path, pending: list[tuple[str, str, datetime | None]]
) -> list[str]:
    """Tell the Prefect server how each `vigie run` cycle it did not record really ended.

    A cycle whose server stopped answering under it loads its data and sends its emails, but
    its run stays Running in the UI (`vigie run` noted it in the warehouse: `pending`, as
    `Store.unrecorded_runs` gives it). With the server back, each such run still not final is
    set Completed (Crashed when the cycle did not finish), with a message saying so. One line
    per run recorded; a failing API leaves the rest for the next cycle.
    """
    from prefect import get_client
    from prefect.client.schemas.objects import State
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.states import Completed, Crashed

    from warehouse.connection import open_warehouse
    from warehouse.store import Store

    if not pending:
        return []
    lines: list[str] = []
    settled: list[str] = []
    with get_client(sync_client=True) as client:
        for cycle_id, flow_run_id, finished_at in pending:
            try:
                run = client.read_flow_run(UUID(flow_run_id))
                if run.state is None or not run.state.is_final():
                    state: State[Any]
                    if finished_at is not None:
                        state = Completed(
                            message=f"cycle {cycle_id} finished at "
                            f"{finished_at:%Y-%m-%d %H:%M:%S %Z} while the Prefect server "
                            "was away: its data were loaded and its emails sent (recorded by "
                            "a later vigie run)"
                        )
                    else:
                        state = Crashed(
                            message=f"cycle {cycle_id} did not finish while the Prefect server "
                            "was away; a later cycle collected what it missed"
                        )
                    client.set_flow_run_state(run.id, state, force=True)
                    lines.append(
                        f"the run of cycle {cycle_id}, left Running when the Prefect server "
                        f"went away, is now recorded as {state.name}"
                    )
            except ObjectNotFound:
                pass  # the server lost it (a new database): nothing to record
            except (httpx.HTTPError, PrefectHTTPStatusError):
                break  # the API fails again: the next cycle tries
            settled.append(cycle_id)
    with open_warehouse(warehouse_path, lock_wait_s=30) as con:
        store = Store(con)
        for cycle_id in settled:
            store.forget_unrecorded_run(cycle_id)
    return lines
