"""What every command shares: exit codes, the settings, a day argument."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import NoReturn

from vigie.errors import VigieError, one_line
from vigie.settings import Settings, load_settings, resolve_config_path

EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(resolve_config_path(args.config))


def exit_now(code: int) -> NoReturn:
    """Exit without Prefect's at-exit flush: with its API gone, its event and log queues
    would retry every item for minutes before the process could end (the data is in the
    warehouse, and the queued items are only the run's telemetry for the UI)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def parse_day(value: str) -> datetime:
    """A --since/--until value: an ISO date or date-time, UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def set_up_watch_automation(settings: Settings) -> None:
    """Create or update the dead man's switch automation on the Prefect server of
    PREFECT_API_URL, and say what it does."""
    from cli.watch_automation import ensure_watch_automation
    from cli.watchdog import duration_text, watchdog_limit

    if not settings.operators:
        print("No watchdog automation: the cell has no members to tell ([[cell.members]]).")
        return
    try:
        setup = ensure_watch_automation(settings, within=watchdog_limit(settings))
    except Exception as err:  # the Prefect client's HTTP and connection errors
        raise VigieError(
            f"the watchdog automation could not be set up on the Prefect server: {one_line(err)}"
        ) from err
    print(
        f"Watchdog automation {setup.name} {setup.action}: the Prefect server emails "
        f"{', '.join(m.email for m in settings.operators)} when no cycle has completed with a "
        f"source answering for {duration_text(setup.within)} (email block {setup.block_name}"
        + (
            f"; the server reads the SMTP password from ${settings.email.password_env} in its "
            "own environment)."
            if settings.email.username
            else ")."
        ),
        flush=True,
    )


def unsent_state(
    *,
    attempts: int,
    max_attempts: int,
    not_before: datetime | None,
    held: str | None,
    uncertain: object | None,
    error: str | None,
    critical: bool,
    sending_at: datetime | None,
    uncertain_sendings: int,
) -> str:
    """Why a message (an email or a channel's) is not sent yet, for `vigie outbox list`."""
    if uncertain is not None:
        return f"UNCERTAIN ({error}; check, then `vigie outbox resend`)"
    if sending_at is not None:
        return f"being sent since {sending_at:%Y-%m-%d %H:%M:%S %Z}"
    if uncertain_sendings:
        return f"second sending due, the first could not be confirmed ({error})"
    if attempts >= max_attempts and not critical:
        return f"GIVEN UP after {attempts} attempts: {error}"
    if held and not_before is not None:
        return f"held ({held}) until {not_before:%Y-%m-%d %H:%M %Z}"
    if error:
        when = f"after {not_before:%Y-%m-%d %H:%M %Z}" if not_before else "at the next delivery"
        return f"retry {when} ({attempts} attempts): {error}"
    return "pending"


def undelivered_why(
    uncertain_at: object | None, attempts: int, error: str | None, critical: bool
) -> str:
    """Why a message needs a person or keeps being tried, for `vigie status`."""
    if uncertain_at:
        return f"UNCERTAIN, not sent again: {error} (check, then vigie outbox resend)"
    if critical:
        return f"still tried at every delivery, {attempts} attempts: {error}"
    return f"given up after {attempts}: {error} (vigie outbox resend)"
