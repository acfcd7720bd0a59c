"""Alerts: open one alert per topic whose volume triggered, with its email queued in the outbox.

One topic never has two open alerts: while one is open, a new trigger only refreshes its
figures. Opening an alert, logging the `opened` event and queueing its email are one
transaction, so a retried cycle either finds the alert (and does nothing) or opens it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from tasks.detect import alert_level, alert_reason
from tasks.notify import alert_message
from vigie.models import VolumeSignal
from vigie.settings import Settings
from warehouse.store import Store


def raise_alerts(
    store: Store,
    settings: Settings,
    signals: Sequence[VolumeSignal],
    *,
    now: datetime,
    run_url: str | None,
) -> list[str]:
    """Open alerts for triggered signals that have none open; return the new alert ids."""
    opened: list[str] = []
    for signal in signals:
        if not signal.triggered:
            continue
        existing = store.open_alert_for(signal.topic)
        if existing is not None:
            store.update_alert(existing.alert_id, signal, now)
            continue
        alert_id = f"al-{now:%Y%m%d%H%M}-{uuid.uuid4().hex[:8]}"
        level = alert_level(signal, settings.detection)
        top = store.top_mentions(signal.topic, start=signal.window_start, end=signal.window_end)
        message = alert_message(
            settings,
            alert_id=alert_id,
            signal=signal,
            level=level,
            top_mentions=top,
            run_url=run_url,
        )
        store.open_alert(
            alert_id,
            signal,
            level=level,
            reason=alert_reason(signal),
            now=now,
            messages=[message],
        )
        opened.append(alert_id)
    return opened
