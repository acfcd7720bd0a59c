"""The channel outbox (migration 016): one row per outbox message and chat, push or SMS channel.

A row is sent at most once in the same way as an email's outbox row: it is claimed in the name
of one sender for a lease before it is handed to the service, marked sent as soon as the
service accepts it, released (and due again, after a back-off unless critical) when the service
refuses it or cannot be reached, and *uncertain* when the sender is gone or no answer came. An
uncertain alert or escalation is due once more (its second sending); any other kind is left for
a person. Rows are keyed by (message, channel), so choosing the channels again adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """What one channel is told of one outbox message."""

    message_id: str
    channel_id: str
    label: str
    kind: str
    title: str
    body: str
    critical: bool = False
    drill: bool = False


@dataclass(frozen=True, slots=True)
class UnplannedMessage:
    """An outbox message whose channels were not chosen yet."""

    message_id: str
    kind: str
    alert_id: str | None
    recipients: tuple[str, ...]
    subject: str
    text: str
    critical: bool
    drill: bool


class ChannelOutbox:
    """Queries and writes of `channel_outbox`, over an injected DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def unplanned(self) -> list[UnplannedMessage]:
        """Outbox messages whose channels were not chosen yet, oldest first."""
        rows = self.con.execute(
            "SELECT message_id, kind, alert_id, recipients, subject, coalesce(text, ''), "
            "coalesce(critical, false), coalesce(drill, false) FROM outbox "
            "WHERE channels_planned_at IS NULL ORDER BY created_at, message_id"
        ).fetchall()
        return [
            UnplannedMessage(mid, kind, alert, tuple(recipients), subject, text, crit, drill)
            for mid, kind, alert, recipients, subject, text, crit, drill in rows
        ]

    def plan(self, message_id: str, rows: Sequence[ChannelMessage], now: datetime) -> int:
        """Record the channels chosen for `message_id`, once: a message already planned (by
        another sender meanwhile) adds nothing. Call it inside a transaction. Returns the rows
        added."""
        marked = self.con.execute(
            "UPDATE outbox SET channels_planned_at = ? "
            "WHERE message_id = ? AND channels_planned_at IS NULL RETURNING message_id",
            [now, message_id],
        ).fetchall()
        if not marked:
            return 0
        added = 0
        for row in rows:
            added += self.con.execute(
                "INSERT INTO channel_outbox (message_id, channel_id, label, kind, critical, "
                "drill, title, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    row.message_id,
                    row.channel_id,
                    row.label,
                    row.kind,
                    row.critical,
                    row.drill,
                    row.title,
                    row.body,
                    now,
                ],
            ).fetchall()[0][0]
        return int(added)

    def _rows(self, where: str, params: list[Any]) -> list[tuple[ChannelMessage, int, int]]:
        rows = self.con.execute(
            "SELECT message_id, channel_id, label, kind, title, body, critical, drill, attempts, "
            f"uncertain_sendings FROM channel_outbox WHERE sent_at IS NULL AND {where} "
            "ORDER BY created_at, message_id, channel_id",
            params,
        ).fetchall()
        return [
            (ChannelMessage(mid, cid, label, kind, title, body, crit, drill), tries, uncertain)
            for mid, cid, label, kind, title, body, crit, drill, tries, uncertain in rows
        ]

    def due(self, max_attempts: int, now: datetime) -> list[tuple[ChannelMessage, int]]:
        """Unsent, unclaimed, certain rows whose back-off is over, with their attempts; critical
        rows are never given up after `max_attempts`."""
        return [
            (message, tries)
            for message, tries, _ in self._rows(
                "sending_at IS NULL AND uncertain_at IS NULL AND (critical OR attempts < ?) "
                "AND (not_before IS NULL OR not_before <= ?)",
                [max_attempts, now],
            )
        ]

    def open_claims(self) -> list[tuple[str, str, str | None, datetime | None]]:
        """Rows a sender holds: (message_id, channel_id, owner, end of its lease)."""
        rows = self.con.execute(
            "SELECT message_id, channel_id, claim_owner, claim_expires_at FROM channel_outbox "
            "WHERE sending_at IS NOT NULL AND sent_at IS NULL AND uncertain_at IS NULL "
            "ORDER BY created_at, message_id, channel_id"
        ).fetchall()
        return [(str(mid), str(cid), owner, expires) for mid, cid, owner, expires in rows]

    def claim(
        self, message_id: str, channel_id: str, owner: str, now: datetime, lease: timedelta
    ) -> int | None:
        """Take a row for sending in the name of `owner` until `now + lease`. Returns how many
        earlier sendings ended with no known outcome, or None when it is already taken,
        uncertain or sent."""
        rows = self.con.execute(
            "UPDATE channel_outbox SET sending_at = ?, claim_owner = ?, claim_expires_at = ? "
            "WHERE message_id = ? AND channel_id = ? AND sent_at IS NULL AND sending_at IS NULL "
            "AND uncertain_at IS NULL RETURNING uncertain_sendings",
            [now, owner, now + lease, message_id, channel_id],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def mark_sent(self, message_id: str, channel_id: str, at: datetime) -> None:
        self.con.execute(
            "UPDATE channel_outbox SET sent_at = ?, attempts = attempts + 1, last_attempt_at = ?, "
            "last_error = NULL, sending_at = NULL, claim_owner = NULL, claim_expires_at = NULL "
            "WHERE message_id = ? AND channel_id = ? AND sent_at IS NULL",
            [at, at, message_id, channel_id],
        )

    def release(
        self,
        message_id: str,
        channel_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        backoff: Callable[[int], timedelta] | None,
    ) -> None:
        """The service refused the row or could not be reached: count the attempt; due again
        after `backoff(attempts)` (None: at the next delivery). Only `owner`'s own claim is
        released; with `owner` None, only a row nobody holds."""
        held_by, holder = ("claim_owner = ?", [owner]) if owner else ("sending_at IS NULL", [])
        rows = self.con.execute(
            "UPDATE channel_outbox SET sending_at = NULL, claim_owner = NULL, "
            "claim_expires_at = NULL, attempts = attempts + 1, last_attempt_at = ?, "
            "last_error = ?, not_before = NULL "
            "WHERE message_id = ? AND channel_id = ? AND sent_at IS NULL "
            f"AND uncertain_at IS NULL AND {held_by} RETURNING attempts",
            [now, error[:500], message_id, channel_id, *holder],
        ).fetchall()
        if rows and backoff is not None:
            self.con.execute(
                "UPDATE channel_outbox SET not_before = ? WHERE message_id = ? AND channel_id = ?",
                [now + backoff(int(rows[0][0])), message_id, channel_id],
            )

    def settle_uncertain(
        self,
        message_id: str,
        channel_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        resend_kinds: Sequence[str],
    ) -> bool:
        """The service may have the row `owner` holds. One of `resend_kinds` whose earlier
        sendings all had a known outcome is due again (its second sending); any other becomes
        uncertain, left for a person. Returns whether it is due again."""
        again = "(kind IN (SELECT unnest($kinds)) AND uncertain_sendings = 0)"
        rows = self.con.execute(
            "UPDATE channel_outbox SET attempts = attempts + 1, last_attempt_at = $now, "
            f"last_error = $error, uncertain_at = CASE WHEN {again} THEN NULL ELSE $now END, "
            f"sending_at = CASE WHEN {again} THEN NULL ELSE sending_at END, "
            f"claim_owner = CASE WHEN {again} THEN NULL ELSE claim_owner END, "
            "uncertain_sendings = uncertain_sendings + 1, not_before = NULL "
            "WHERE message_id = $message_id AND channel_id = $channel_id AND sent_at IS NULL "
            "AND uncertain_at IS NULL AND sending_at IS NOT NULL "
            "AND claim_owner IS NOT DISTINCT FROM $owner RETURNING uncertain_at",
            {
                "now": now,
                "error": error[:500],
                "kinds": list(resend_kinds),
                "message_id": message_id,
                "channel_id": channel_id,
                "owner": owner,
            },
        ).fetchall()
        return bool(rows) and rows[0][0] is None

    def undelivered(self, max_attempts: int) -> list[tuple[Any, ...]]:
        """Rows that need a person: uncertain, or failed `max_attempts` times (critical rows are
        still tried): message_id, label, kind, uncertain_at, attempts, last_error, critical."""
        return self.con.execute(
            "SELECT message_id, label, kind, uncertain_at, attempts, last_error, critical "
            "FROM channel_outbox "
            "WHERE sent_at IS NULL AND (uncertain_at IS NOT NULL OR attempts >= ?) "
            "ORDER BY created_at, message_id, channel_id",
            [max_attempts],
        ).fetchall()

    def log(self) -> list[tuple[str, str, str, datetime | None, int, str | None]]:
        """Every row: message_id, channel_id, label, sent_at, attempts, last_error."""
        rows = self.con.execute(
            "SELECT message_id, channel_id, label, sent_at, attempts, last_error "
            "FROM channel_outbox ORDER BY created_at, message_id, channel_id"
        ).fetchall()
        return [(m, c, label, sent, int(a), err) for m, c, label, sent, a, err in rows]

    def resend(self, message_id: str) -> int:
        """Make the unsent rows of `message_id` (uncertain or given up) pending again, once
        someone has checked. Returns how many."""
        rows = self.con.execute(
            "UPDATE channel_outbox SET uncertain_at = NULL, sending_at = NULL, "
            "claim_owner = NULL, claim_expires_at = NULL, not_before = NULL, attempts = 0 "
            "WHERE message_id = ? AND sent_at IS NULL RETURNING channel_id",
            [message_id],
        ).fetchall()
        return len(rows)

    def unsent(self) -> list[tuple[Any, ...]]:
        """Every unsent row: message_id, label, kind, attempts, not_before, uncertain_at,
        last_error, critical, sending_at, uncertain_sendings."""
        return self.con.execute(
            "SELECT message_id, label, kind, attempts, not_before, uncertain_at, last_error, "
            "critical, sending_at, uncertain_sendings FROM channel_outbox "
            "WHERE sent_at IS NULL ORDER BY created_at, message_id, channel_id"
        ).fetchall()
