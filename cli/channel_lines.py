"""What `vigie check`, `vigie status` and `vigie outbox list` say of the chat, push and SMS
channels and their rows (warehouse/channel_outbox.py): a channel is named by its owner, scheme
and hash, never by its URL."""

from __future__ import annotations

import duckdb

from cli.common import undelivered_why, unsent_state
from tasks.notify.channels import channel_label
from tasks.notify.delivery import MAX_ATTEMPTS
from vigie.settings import Settings
from warehouse.channel_outbox import ChannelOutbox


def channel_status_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`vigie status`: how many channel messages wait, and those that need a person."""
    outbox = ChannelOutbox(con)
    lines = [f"Channel messages waiting: {len(outbox.unsent())}"]
    for message_id, label, kind, uncertain_at, attempts, error, critical in outbox.undelivered(
        MAX_ATTEMPTS
    ):
        why = undelivered_why(uncertain_at, attempts, error, critical)
        lines.append(f"  {message_id} [{kind}] to {label}: {why}")
    return lines


def channel_outbox_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`vigie outbox list`: each unsent channel message and its state."""
    lines = []
    for message_id, label, kind, attempts, not_before, uncertain, error, *more in ChannelOutbox(
        con
    ).unsent():
        critical, sending_at, uncertain_sendings = more
        state = unsent_state(
            attempts=attempts,
            max_attempts=MAX_ATTEMPTS,
            not_before=not_before,
            held=None,
            uncertain=uncertain,
            error=error,
            critical=critical,
            sending_at=sending_at,
            uncertain_sendings=uncertain_sendings,
        )
        lines.append(f"{message_id} [{kind}] to {label}: {state}")
    return lines


# Schemes whose service is reached over plain HTTP: the token in the URL travels unencrypted.
PLAIN_SCHEMES = frozenset(
    {"json", "form", "xml", "mmost", "matrix", "rocket", "gotify", "ntfy", "signal", "smseagle"}
)
_LOOPBACK = ("127.", "localhost", "[::1]")


def channel_check_lines(settings: Settings) -> list[str]:
    """`vigie check`: the channels, by owner, scheme and hash; a warning for each one whose
    token would cross the network unencrypted."""
    owners = [(m.name, m.channels) for m in settings.cell.members]
    owners += [(t.name, t.channels) for t in settings.teams]
    labels, lines = [], []
    for name, channels in owners:
        for channel in channels:
            url = channel.get_secret_value()
            label = channel_label(name, url)
            labels.append(label)
            scheme, _, rest = url.partition("://")
            host = rest.split("/", 1)[0].rpartition("@")[2]
            if scheme.lower() in PLAIN_SCHEMES and not host.lower().startswith(_LOOPBACK):
                lines.append(
                    f"Warning: channel {label}: {scheme}:// sends its token unencrypted to "
                    f"another machine: use {scheme.lower()}s:// if the service has HTTPS"
                )
    if labels:
        lines.insert(0, f"Channels ({len(labels)}): {', '.join(labels)}")
    return lines
