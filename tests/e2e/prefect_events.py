"""Reading Vigie's Prefect events back from a real server, as an automation would see them.

The server's event persister writes in batches (about every 5 s), so reads poll, bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.events.schemas.events import ReceivedEvent


def vigie_events(since: datetime) -> list[ReceivedEvent]:
    """Every `vigie.*` event that occurred since `since`, oldest first (the first 50)."""
    from prefect import get_client
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventOrder,
    )

    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(minutes=1)),
        event=EventNameFilter(prefix=["vigie."]),
        order=EventOrder.ASC,
    )
    with get_client(sync_client=True) as client:
        return list(client.read_events(filter=event_filter, limit=50).events)


def wait_for_events(
    since: datetime,
    done: Callable[[list[ReceivedEvent]], bool],
    timeout_s: float = 60.0,
) -> list[ReceivedEvent]:
    """The `vigie.*` events since `since`, once `done(events)` holds or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    events = vigie_events(since)
    while not done(events) and time.monotonic() < deadline:
        time.sleep(1.0)
        events = vigie_events(since)
    return events
