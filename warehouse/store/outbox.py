"""The outbox: messages queued once, claimed with an owner and a lease, sent once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from vigie.models import InlineImage, OutboxMessage
from warehouse.store.base import StoreBase


class OutboxStore(StoreBase):
    """The outbox: messages queued once, claimed with an owner and a lease, sent once."""

    def outbox_has(self, message_id: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT count(*) FROM outbox WHERE message_id = ?", [message_id]
            ).fetchall()[0][0]
        )

    def queue(self, message: OutboxMessage, now: datetime) -> bool:
        """Add a message to the outbox once: a second queue of the same id does nothing.

        Returns whether the message was added.
        """
        inserted = self.con.execute(
            "INSERT INTO outbox (message_id, kind, alert_id, recipients, subject, html, "
            "created_at, text, critical, drill) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                message.message_id,
                message.kind,
                message.alert_id,
                list(message.recipients),
                message.subject,
                message.html,
                now,
                message.text,
                message.critical,
                message.drill,
            ],
        ).fetchall()[0][0]
        if inserted and message.images:
            self.con.executemany(
                "INSERT INTO outbox_images VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [[message.message_id, image.cid, image.png] for image in message.images],
            )
        return bool(inserted)

    def outbox_log(self, kind: str) -> list[tuple[str, datetime, datetime | None]]:
        """Every message of a kind ever queued: (message_id, created_at, sent_at), oldest first."""
        rows = self.con.execute(
            "SELECT message_id, created_at, sent_at FROM outbox WHERE kind = ? "
            "ORDER BY created_at, message_id",
            [kind],
        ).fetchall()
        return [(str(mid), created, sent) for mid, created, sent in rows]

    def _outbox_rows(self, where: str, params: list[Any]) -> list[tuple[OutboxMessage, int]]:
        """Unsent messages matching `where`, oldest first, with their inline images and the
        number of attempts made so far."""
        rows = self.con.execute(
            "SELECT message_id, kind, recipients, subject, html, alert_id, text, critical, "
            f"drill, attempts FROM outbox WHERE sent_at IS NULL AND {where} "
            "ORDER BY created_at, message_id",
            params,
        ).fetchall()
        images: dict[str, list[InlineImage]] = {}
        if rows:
            for message_id, cid, png in self.con.execute(
                "SELECT message_id, cid, png FROM outbox_images "
                "WHERE message_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY message_id, cid",
                [[row[0] for row in rows]],
            ).fetchall():
                images.setdefault(message_id, []).append(InlineImage(cid, bytes(png)))
        found = []
        for mid, kind, recipients, subject, body, alert_id, text, critical, drill, tries in rows:
            message = OutboxMessage(
                mid,
                kind,
                tuple(recipients),
                subject,
                body,
                alert_id,
                text or "",
                tuple(images.get(mid, ())),
                bool(critical),
                bool(drill),
            )
            found.append((message, int(tries)))
        return found

    def pending_messages(self, max_attempts: int) -> list[OutboxMessage]:
        """Every unsent message not given up yet, whatever holds it."""
        return [m for m, _ in self._outbox_rows("attempts < ?", [max_attempts])]

    def mark_sent(self, message_id: str, at: datetime) -> None:
        self.con.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_attempt_at = ?, "
            "last_error = NULL, sending_at = NULL, claim_owner = NULL, claim_expires_at = NULL, "
            "held_reason = NULL WHERE message_id = ? AND sent_at IS NULL",
            [at, at, message_id],
        )

    def open_claims(self) -> list[tuple[str, str | None, datetime | None]]:
        """Messages a sender holds for SMTP: (message_id, owner, end of its lease)."""
        rows = self.con.execute(
            "SELECT message_id, claim_owner, claim_expires_at FROM outbox "
            "WHERE sending_at IS NOT NULL AND sent_at IS NULL AND uncertain_at IS NULL "
            "ORDER BY created_at, message_id"
        ).fetchall()
        return [(str(mid), owner, expires) for mid, owner, expires in rows]

    def settle_uncertain(
        self,
        message_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        resend_kinds: Sequence[str],
    ) -> bool:
        """The server may have accepted the message `owner` holds. One of `resend_kinds` whose
        earlier sendings all had a known outcome is due again (its second sending); any other
        becomes *uncertain*, left for a person. Returns whether it is due again.
        """
        again = "(kind IN (SELECT unnest($kinds)) AND coalesce(uncertain_sendings, 0) = 0)"
        rows = self.con.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = $now, "
            f"last_error = $error, uncertain_at = CASE WHEN {again} THEN NULL ELSE $now END, "
            f"sending_at = CASE WHEN {again} THEN NULL ELSE sending_at END, "
            f"claim_owner = CASE WHEN {again} THEN NULL ELSE claim_owner END, "
            "uncertain_sendings = coalesce(uncertain_sendings, 0) + 1, "
            "not_before = NULL, held_reason = NULL "
            "WHERE message_id = $message_id AND sent_at IS NULL AND uncertain_at IS NULL "
            "AND sending_at IS NOT NULL AND claim_owner IS NOT DISTINCT FROM $owner "
            "RETURNING uncertain_at",
            {
                "now": now,
                "error": error[:500],
                "kinds": list(resend_kinds),
                "message_id": message_id,
                "owner": owner,
            },
        ).fetchall()
        return bool(rows) and rows[0][0] is None

    def due_messages(self, max_attempts: int, now: datetime) -> list[tuple[OutboxMessage, int]]:
        """Unsent, unclaimed, certain messages whose hold or back-off is over, with attempts;
        critical mail is never given up after `max_attempts`."""
        return self._outbox_rows(
            "sending_at IS NULL AND uncertain_at IS NULL AND (critical OR attempts < ?) "
            "AND (not_before IS NULL OR not_before <= ?)",
            [max_attempts, now],
        )

    def recent_sends(self, since: datetime) -> dict[str, list[datetime]]:
        """When non-critical mail went to each recipient since `since` (the hourly cap)."""
        rows = self.con.execute(
            "SELECT recipient, sent_at FROM (SELECT unnest(recipients) AS recipient, sent_at "
            "FROM outbox WHERE sent_at >= ? AND NOT critical AND kind <> 'held_note')",
            [since],
        ).fetchall()
        sends: dict[str, list[datetime]] = {}
        for recipient, sent_at in rows:
            sends.setdefault(recipient, []).append(sent_at)
        return sends

    def hold_message(self, message_id: str, until: datetime, reason: str) -> None:
        self.con.execute(
            "UPDATE outbox SET not_before = ?, held_reason = ? WHERE message_id = ?",
            [until, reason, message_id],
        )

    def claim(self, message_id: str, owner: str, now: datetime, lease: timedelta) -> int | None:
        """Take a message for SMTP in the name of `owner` until `now + lease`.

        Returns how many earlier sendings of it ended with no known outcome (0 for a first
        sending), or None when it is already taken, uncertain or sent.
        """
        rows = self.con.execute(
            "UPDATE outbox SET sending_at = ?, claim_owner = ?, claim_expires_at = ? "
            "WHERE message_id = ? AND sent_at IS NULL AND sending_at IS NULL "
            "AND uncertain_at IS NULL RETURNING coalesce(uncertain_sendings, 0)",
            [now, owner, now + lease, message_id],
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def release_claim(
        self,
        message_id: str,
        owner: str | None,
        error: str,
        now: datetime,
        backoff: Callable[[int], timedelta] | None,
    ) -> None:
        """The server refused the message or could not be reached: count the attempt; it is due
        again after `backoff(attempts)` (None: at the next delivery).

        Only `owner`'s own claim is released; with `owner` None, only a message nobody holds
        (one this sender read as due and never claimed).
        """
        held_by, holder = ("claim_owner = ?", [owner]) if owner else ("sending_at IS NULL", [])
        rows = self.con.execute(
            "UPDATE outbox SET sending_at = NULL, claim_owner = NULL, claim_expires_at = NULL, "
            "attempts = attempts + 1, last_attempt_at = ?, last_error = ?, "
            "not_before = NULL, held_reason = NULL "
            f"WHERE message_id = ? AND sent_at IS NULL AND uncertain_at IS NULL AND {held_by} "
            "RETURNING attempts",
            [now, error[:500], message_id, *holder],
        ).fetchall()
        if rows and backoff is not None:
            self.con.execute(
                "UPDATE outbox SET not_before = ? WHERE message_id = ?",
                [now + backoff(int(rows[0][0])), message_id],
            )

    def resend(self, message_id: str) -> bool:
        """Make an uncertain (or given-up) message pending again, once someone has checked."""
        rows = self.con.execute(
            "UPDATE outbox SET uncertain_at = NULL, sending_at = NULL, claim_owner = NULL, "
            "claim_expires_at = NULL, not_before = NULL, attempts = 0 "
            "WHERE message_id = ? AND sent_at IS NULL RETURNING message_id",
            [message_id],
        ).fetchall()
        return bool(rows)

    def undelivered(self, max_attempts: int) -> list[tuple[Any, ...]]:
        """Messages that need a person: uncertain, or failed `max_attempts` times (critical
        mail is still tried at every delivery): message_id, kind, subject, uncertain_at,
        attempts, last_error, critical."""
        return self.con.execute(
            "SELECT message_id, kind, subject, uncertain_at, attempts, last_error, critical "
            "FROM outbox "
            "WHERE sent_at IS NULL AND (uncertain_at IS NOT NULL OR attempts >= ?) "
            "ORDER BY created_at",
            [max_attempts],
        ).fetchall()

    def delivery_state(
        self, message_id: str
    ) -> tuple[datetime | None, int, str | None, datetime | None] | None:
        """A queued message's sent_at, attempts, last error and not_before (None: not queued)."""
        rows = self.con.execute(
            "SELECT sent_at, attempts, last_error, not_before FROM outbox WHERE message_id = ?",
            [message_id],
        ).fetchall()
        return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None

    def last_notice(self, kinds: Sequence[str]) -> tuple[str, str] | None:
        """The newest outbox message of these kinds, as (kind, message id)."""
        rows = self.con.execute(
            "SELECT kind, message_id FROM outbox WHERE kind IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY created_at DESC, message_id DESC LIMIT 1",
            [list(kinds)],
        ).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def unsent_count(self) -> int:
        return int(
            self.con.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchall()[0][0]
        )
