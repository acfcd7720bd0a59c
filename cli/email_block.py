"""`VigieEmail`, a Prefect notification block that sends an email over Vigie's own SMTP settings.

The dead man's switch as a Prefect automation (cli/watch_automation.py) must email the
operators when the worker or `vigie serve` is dead, so the email is sent by the Prefect server
itself: its actions service loads the block named in the automation's SendNotification action
and calls `notify`. No core Prefect block sends SMTP email (they call webhooks or SendGrid), so
Vigie registers this one through the `prefect.collections` entry point of pyproject.toml: a
Prefect server started from Vigie's environment imports this module and can load the block.

This module is imported by every Prefect process of that environment (server, workers): it
imports nothing heavy; the SMTP code is imported when a notification is sent. The SMTP password
is never stored in the block: anyone who can reach the Prefect API can read a block's secrets
(`POST /block_documents/filter {"include_secrets": true}`). The block names the environment
variable (`password_env`, by default VIGIE_SMTP_PASSWORD) that the Prefect server reads at send
time: set it in the server's environment.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Literal

from prefect.blocks.abstract import NotificationBlock, NotificationError
from pydantic import Field, SecretStr

BLOCK_TYPE_SLUG = "vigie-email"


class VigieEmail(NotificationBlock):
    """Email a notification to fixed recipients through an SMTP server (Vigie's [email])."""

    _block_type_name = "Vigie email"
    _block_type_slug = BLOCK_TYPE_SLUG
    _description = (
        "Sends a notification as an email through an SMTP server, with Vigie's settings "
        "(certificates verified). Used by Vigie's dead man's switch automation."
    )

    host: str = Field(description="SMTP server")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    sender: str = Field(description="The From address (also the login when there is one)")
    sender_name: str = "Vigie"
    username: str | None = None
    password_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$",
        description="With a username: the environment variable of the Prefect server that holds "
        "the SMTP password, read at send time (the password is never stored in the block)",
    )
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server")
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    recipients: list[str] = Field(description="Who receives every notification")
    # Prefect runs an automation's action once: a server that is down or answers 4xx for a
    # moment is tried again after each of these pauses before the notice is given up.
    retry_delays_s: list[float] = Field(
        default=[10.0, 30.0, 90.0],
        max_length=10,
        description="Pauses before trying again a server that is down or answers 4xx",
    )

    async def notify(self, body: str, subject: str | None = None) -> None:
        """Send `body` to the recipients, again after each of `retry_delays_s` while the
        failure may pass (server down, 4xx); raises NotificationError (inside Prefect's
        `raise_on_failure`, as its SendNotification action does) when SMTP refuses it for good
        or every attempt failed."""
        delays = iter(self.retry_delays_s)
        while True:
            failure = await asyncio.to_thread(self._send_once, body, subject or "Vigie")
            if failure is None:
                return
            reason, passing = failure
            delay = next(delays, None) if passing else None
            if delay is None:
                break
            self.logger.warning("Vigie email not sent yet (%s): next try in %g s", reason, delay)
            await asyncio.sleep(delay)
        self.logger.error("Vigie email not sent: %s", reason)
        if self._raise_on_failure:
            raise NotificationError(log=reason)

    def send(self, body: str, subject: str) -> str | None:
        """Send now, once; None when the server accepted the message, else why not (one line,
        no password: the same descriptions as the outbox's)."""
        failure = self._send_once(body, subject)
        return None if failure is None else failure[0]

    def _send_once(self, body: str, subject: str) -> tuple[str, bool] | None:
        """None when the server accepted the message, else why not and whether trying again
        may succeed."""
        import html
        import smtplib
        import ssl

        from tasks.notify.delivery import (
            DeliveryUncertain,
            compose_email,
            conversation_limit,
            transmit,
        )
        from tasks.notify.emails import (
            _SMTP_ERRORS,
            _describe_smtp_error,
            close_smtp,
            header_safe,
            smtp_client,
        )
        from vigie.models import OutboxMessage
        from vigie.settings import Email, Secrets

        email = Email(
            host=self.host,
            port=self.port,
            security=self.security,
            sender=self.sender,
            sender_name=self.sender_name,
            username=self.username,
            ca_file=Path(self.ca_file) if self.ca_file else None,
            timeout_s=self.timeout_s,
        )
        message = OutboxMessage(
            message_id=f"prefect.notification.{uuid.uuid4().hex}",
            kind="prefect_notification",
            recipients=tuple(self.recipients),
            subject=header_safe(subject),
            html=(
                '<html><body style="font-family:sans-serif">'
                + "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p.strip())
                + "</body></html>"
            ),
            text=body,
            critical=True,
        )
        password = os.environ.get(self.password_env, "") if self.password_env else ""
        if self.username and not password:
            return (
                f"{self.password_env or 'the password variable'} is not set in the environment "
                "of the Prefect server: set it where `prefect server start` runs",
                False,
            )
        client = None
        try:
            secret = SecretStr(password) if password else None
            client = smtp_client(email, Secrets(smtp_password=secret))
            client.login()
            mime = compose_email(message, sender=self.sender, sender_name=self.sender_name)
            limit_s = conversation_limit(email, len(self.recipients))
            transmit(client.smtp, self.sender, self.recipients, mime.as_bytes(), limit_s=limit_s)
        except DeliveryUncertain as err:
            # The server may have it: a notice is never sent twice (docs/reliability.md).
            return f"{err}; delivery uncertain, not sent again", False
        except _SMTP_ERRORS as err:
            if isinstance(err, smtplib.SMTPResponseException):
                passing = 400 <= err.smtp_code < 500
            elif isinstance(err, smtplib.SMTPRecipientsRefused):
                passing = all(400 <= code < 500 for code, _ in err.recipients.values())
            else:  # down, timed out, dropped: it may come back; a certificate will not
                passing = not isinstance(err, ssl.SSLError)
            return _describe_smtp_error(err), passing
        finally:
            close_smtp(client)
        return None
