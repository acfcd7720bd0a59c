"""The unreadable-warehouse alarm on the operators' chat, push and SMS channels.

When the warehouse cannot be read, `vigie watchdog` emails the operators without the outbox
(cli/watchdog.py); their channels are told the same way, once per incident and channel: a
small state file beside the warehouse (`<warehouse>.watchdog-channels.json`, under a file
lock, so two watchdogs at once tell each channel once) names the incident and the channels
told. A channel that refuses is tried again by the next run; one whose sending got no answer
is not (the rule of any notice: it may have arrived). The file goes when the warehouse reads
again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli.watchdog import locked_state_file
from tasks.notify.channels import (
    ChannelOutcome,
    Notifier,
    apprise_notify,
    channel_id,
    channel_label,
    inert,
)
from vigie.models import OutboxMessage
from vigie.settings import Settings

TITLE = {
    "fr": "Vigie — LA VEILLE EST ARRÊTÉE : entrepôt illisible",
    "en": "Vigie — THE WATCH HAS STOPPED: warehouse unreadable",
}


def channel_alarm_file(path: Path) -> Path:
    """The state file of the channels' unreadable-warehouse alarm of the warehouse `path`."""
    return path.with_name(path.name + ".watchdog-channels.json")


def tell_channels_unreadable(
    settings: Settings,
    path: Path,
    notice: OutboxMessage,
    *,
    notify: Notifier = apprise_notify,
) -> list[str]:
    """Tell each operator's channel of the unreadable warehouse, once per incident (the
    notice's id names it); returns one line per channel tried."""
    targets = [
        (channel_id(c.get_secret_value()), channel_label(m.name, c.get_secret_value()), c)
        for m in settings.operators
        for c in m.channels
    ]
    if not targets:
        return []
    language = settings.organisation.language
    title = TITLE[language if language in TITLE else "en"]
    body = inert(notice.text, 700)
    lines = []
    with locked_state_file(channel_alarm_file(path)) as handle:
        handle.seek(0)
        try:
            state = json.loads(handle.read() or "{}")
        except ValueError:
            state = {}  # cut short: told again (one more message, none lost)
        if not isinstance(state, dict) or state.get("message_id") != notice.message_id:
            state = {"message_id": notice.message_id, "told": []}
        told: list[str] = list(state.get("told", []))
        for key, label, url in targets:
            if key in told:
                continue
            try:
                outcome = notify(url.get_secret_value(), title, body, True)
            except Exception as err:  # a plugin's bug must not stop the other channels
                outcome = ChannelOutcome("refused", f"Apprise failed: {type(err).__name__}")
            if outcome.outcome == "refused":
                lines.append(f"Not told now, the next run tries again: {label} ({outcome.reason})")
                continue
            told.append(key)
            state["told"] = told
            handle.seek(0)
            handle.truncate()
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
            if outcome.outcome == "sent":
                lines.append(f"Told on {label}")
            else:
                lines.append(f"Uncertain, not told again: {label} ({outcome.reason})")
    return lines


def clear_channel_alarm(path: Path) -> None:
    """The warehouse reads again: the incident is over for the channels too."""
    channel_alarm_file(path).unlink(missing_ok=True)
