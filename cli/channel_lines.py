"""What `vigie status` and `vigie outbox list` say of the chat, push and SMS channels' rows
(warehouse/channel_outbox.py): a channel is named by its owner, scheme and hash, never by its
URL."""

from __future__ import annotations

import duckdb

from tasks.notify.delivery import MAX_ATTEMPTS
from warehouse.channel_outbox import ChannelOutbox


def channel_status_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`vigie status`: how many channel messages wait, and those that need a person."""
    outbox = ChannelOutbox(con)
    lines = [f"Channel messages waiting: {len(outbox.unsent())}"]
    for message_id, label, kind, uncertain_at, attempts, error, critical in outbox.undelivered(
        MAX_ATTEMPTS
    ):
        if uncertain_at:
            why = f"UNCERTAIN, not sent again: {error} (check, then vigie outbox resend)"
        elif critical:
            why = f"still tried at every delivery, {attempts} attempts: {error}"
        else:
            why = f"given up after {attempts}: {error} (vigie outbox resend)"
        lines.append(f"  {message_id} [{kind}] to {label}: {why}")
    return lines


def channel_outbox_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`vigie outbox list`: each unsent channel message and its state."""
    lines = []
    for message_id, label, kind, attempts, not_before, uncertain, error, *more in ChannelOutbox(
        con
    ).unsent():
        critical, sending_at, uncertain_sendings = more
        if uncertain is not None:
            state = f"UNCERTAIN ({error}; check, then `vigie outbox resend`)"
        elif sending_at is not None:
            state = f"being sent since {sending_at:%Y-%m-%d %H:%M:%S %Z}"
        elif uncertain_sendings:
            state = f"second sending due, the first could not be confirmed ({error})"
        elif attempts >= MAX_ATTEMPTS and not critical:
            state = f"GIVEN UP after {attempts} attempts: {error}"
        elif error:
            when = f"after {not_before:%Y-%m-%d %H:%M %Z}" if not_before else "at the next delivery"
            state = f"retry {when} ({attempts} attempts): {error}"
        else:
            state = "pending"
        lines.append(f"{message_id} [{kind}] to {label}: {state}")
    return lines
