"""The dead man's switch's pure parts: its limit, its notices and their wording."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli.watchdog import (
    RECOVERED,
    STOPPED,
    WatchState,
    alarm_file,
    clear_unreadable,
    duration_text,
    tell_unreadable,
    watchdog_limit,
    watchdog_notices,
)
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import OutboxMessage

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_limit_is_three_scheduled_cycles_and_at_least_half_an_hour(tmp_path: Path) -> None:
    assert watchdog_limit(settings_from(tmp_path, MINIMAL_TOML)) == timedelta(minutes=30)
    hourly = MINIMAL_TOML + "\n[schedule]\nwatch_every_minutes = 60\n"
    assert watchdog_limit(settings_from(tmp_path, hourly)) == 3 * HOUR
    told = MINIMAL_TOML + "\n[health]\nwatchdog_minutes = 15\n"
    assert watchdog_limit(settings_from(tmp_path, told)) == timedelta(minutes=15)


def test_durations_read_as_people_say_them() -> None:
    assert duration_text(timedelta(minutes=45)) == "45 min"
    assert duration_text(timedelta(hours=3, minutes=5)) == "3 h 05"
    assert duration_text(timedelta(days=2, hours=4, minutes=59)) == "2 d 4 h"


def test_a_stop_is_one_critical_notice_named_by_the_last_cycle_that_watched(
    tmp_path: Path,
) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    state = WatchState(NOW, HOUR, "c1", NOW - 3 * HOUR)
    [notice] = watchdog_notices(settings, state, None)
    assert (notice.kind, notice.message_id, notice.critical) == (
        STOPPED,
        "watchdog.stopped.c1",
        True,
    )
    assert notice.subject == "[Vigie][VEILLE ARRÊTÉE] Aucun cycle de veille depuis 3 h 00"
    # No operator in this cell: the first level hears of it.
    assert notice.recipients == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
    )
    never = watchdog_notices(settings, WatchState(NOW, HOUR, None, None), None)
    assert [n.message_id for n in never] == ["watchdog.stopped.never"]


def test_the_return_is_told_only_after_a_stop_was(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    running = WatchState(NOW, HOUR, "c9", NOW - timedelta(minutes=5))
    assert watchdog_notices(settings, running, None) == []
    assert watchdog_notices(settings, running, (RECOVERED, "watchdog.recovered.c1")) == []
    [back] = watchdog_notices(settings, running, (STOPPED, "watchdog.stopped.c1"))
    assert (back.kind, back.message_id, back.critical) == (
        RECOVERED,
        "watchdog.recovered.c1",
        False,
    )


def test_nobody_to_tell_queues_nothing(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    assert watchdog_notices(settings, WatchState(NOW, HOUR, None, None), None) == []


def test_two_watchdogs_at_once_on_an_unreadable_warehouse_send_one_email(
    tmp_path: Path,
) -> None:
    """The state file beside the warehouse, under its lock: the second waits for the first's
    SMTP exchange, then finds the email sent. A failed send is tried again; the incident ends
    when the warehouse reads again, and the next one is a new email."""
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    warehouse = tmp_path / "wh.duckdb"
    sent: list[OutboxMessage] = []
    refuse = [True]

    def send(message: OutboxMessage) -> str | None:
        if refuse[0]:
            return "SMTP 451: try later"
        time.sleep(0.5)
        sent.append(message)
        return None

    def tell(now: datetime) -> str:
        outcome, _ = tell_unreadable(
            settings, warehouse, "cut short", "vigie db restore B", now=now, send=send
        )
        return outcome

    assert tell(NOW) == "failed" and sent == []
    refuse[0] = False
    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(tell, [NOW + HOUR, NOW + HOUR]))
    assert outcomes == ["already_sent", "sent"]
    [message] = sent
    assert message.message_id == f"watchdog.unreadable.{NOW:%Y%m%dT%H%M%SZ}"  # the first seen
    assert message.critical and "vigie db restore B" in message.text
    assert str(warehouse) in message.text and "cut short" in message.text
    assert clear_unreadable(warehouse) is not None and not alarm_file(warehouse).exists()
    assert tell(NOW + 2 * HOUR) == "sent" and len(sent) == 2
