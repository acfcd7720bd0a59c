"""Publishing to the Prefect UI is best effort: with the API gone, an artifact is skipped with
one warning, without Prefect's minute of retries, and the caller goes on."""

from __future__ import annotations

import logging

from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from tasks.ui import api_answers, publish_markdown, publish_progress, publish_table
from vigie.localservers import free_port


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_with_the_api_gone_nothing_is_published_and_nothing_fails() -> None:
    # A handler of its own: whether Prefect's logging setup has run decides where caplog and
    # capfd would see the module's warnings.
    kept, logger = _Kept(), logging.getLogger("tasks.ui")
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
