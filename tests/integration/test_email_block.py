"""`VigieEmail`, the notification block the Prefect server sends the dead man's switch email with,
against a real SMTP server (aiosmtpd) asking for STARTTLS and a password; and the automation
that uses it, as `ensure_watch_automation` builds it."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from prefect.blocks.abstract import NotificationError
from prefect.blocks.core import Block
from pydantic import SecretStr

from tasks.email_block import VigieEmail
from tasks.events import WATCH_WATCHED
from tasks.watch_automation import email_block, notice_texts, watch_automation
from tasks.watchdog import watchdog_limit
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink
from vigie.settings import Secrets, load_settings

SECRET = "pw-Block-4k?-vigie-secret"
WRONG = "pw-Block-wrong-not-the-secret"
SENDER = "vigie@laiterie-boreale.example"


LOGINS: list[bytes] = []


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    LOGINS.append(data.password if isinstance(data, LoginPassword) else b"")
    ok = isinstance(data, LoginPassword) and data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


def _block(port: int, cert: Path, password: str) -> VigieEmail:
    return VigieEmail(
        host="127.0.0.1",
        port=port,
        security="starttls",
        sender=SENDER,
        username=SENDER,
        password=SecretStr(password),
        ca_file=str(cert),
        timeout_s=10,
        recipients=["nadia.ouellet@laiterie-boreale.example"],
    )


def test_the_block_emails_over_verified_starttls_and_a_refusal_is_one_line_without_the_password(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as mail:
        asyncio.run(_block(mail.port, cert, SECRET).notify("Première ligne.\n\nSeconde.", "Sujet"))
        [message] = mail.messages()
        assert str(message["Subject"]) == "Sujet"
        assert "nadia.ouellet@laiterie-boreale.example" in str(message["To"])
        plain = message.get_body(preferencelist=("plain",))
        assert plain is not None and "Première ligne." in plain.get_content()

        wrong = _block(mail.port, cert, WRONG)
        LOGINS.clear()
        with wrong.raise_on_failure(), pytest.raises(NotificationError) as refused:
            asyncio.run(wrong.notify("body", "Sujet"))
        # One attempt (smtplib tries PLAIN then LOGIN, as the server offers both), no retry.
        assert [WRONG.encode()] * 2 == LOGINS
        assert refused.value.log.startswith("SMTP 535"), refused.value.log
        assert WRONG not in refused.value.log and SECRET not in refused.value.log
        assert len(mail.messages()) == 1
    # A server that verifies nothing else: an unknown certificate is refused too.
    with MailSink(tmp_path / "other", tls_context=context, authenticator=_check_password) as mail:
        untrusted = _block(mail.port, cert, SECRET).model_copy(update={"ca_file": None})
        assert untrusted.send("body", "Sujet") is not None
        assert mail.messages() == []


def test_prefect_finds_the_block_through_its_entry_point() -> None:
    # What the server's actions service does with the block document's schema.
    assert Block.get_block_class_from_key("vigie-email") is VigieEmail


def test_the_automation_expects_a_watching_cycle_within_the_watchdog_limit(
    write_config: ConfigWriter,
) -> None:
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/rss.xml"}],
        smtp_port=2525,
        extra="[health]\nwatchdog_minutes = 45\n",
        language="en",
    )
    settings = load_settings(config)
    within = watchdog_limit(settings)
    automation = watch_automation(settings, "8f4f2c9e-0d5e-4a55-9a3a-3b3f1c0b6a51", within)
    trigger = automation.trigger
    assert trigger.posture == "Proactive"  # type: ignore[union-attr]
    assert trigger.after == trigger.expect == {WATCH_WATCHED}  # type: ignore[union-attr]
    assert trigger.for_each == {"prefect.resource.id"}  # type: ignore[union-attr]
    assert trigger.within == timedelta(minutes=45)  # type: ignore[union-attr]
    subject, body = notice_texts(settings, within)
    assert subject == "[Vigie][WATCH STOPPED] No watch cycle for more than 45 min"
    assert "{{ event.payload.cycle_id }}" in body
    # The block carries the password only when the server asks for a login.
    block = email_block(settings, Secrets(smtp_password=SecretStr(SECRET)))
    assert block.password is None
    assert block.recipients == [m.email for m in settings.operators]
    assert SECRET not in automation.model_dump_json()


def test_the_block_tries_again_a_server_that_answers_4xx_and_never_a_5xx(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    """Prefect runs the automation's action once: the block itself tries again after each
    pause while the failure may pass (4xx, a server down), and gives up at once on a 5xx."""
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as mail:
        block = _block(mail.port, cert, SECRET).model_copy(update={"retry_delays_s": [0.2] * 3})
        mail.refuse_with, mail.refuse_times = "451 4.3.0 Try again later", 2
        asyncio.run(block.notify("Le guet s'est arrêté.", "Vigie"))
        assert mail.refused == 2
        assert len(mail.messages()) == 1  # the third attempt, once

        mail.refuse_with, mail.refuse_times, mail.refused = "554 5.7.1 Rejected", None, 0
        with block.raise_on_failure(), pytest.raises(NotificationError) as rejected:
            asyncio.run(block.notify("Le guet s'est arrêté.", "Vigie"))
        assert mail.refused == 1
        assert rejected.value.log.startswith("SMTP 554"), rejected.value.log

        mail.refuse_with, mail.refuse_times, mail.refused = "421 4.3.2 Going down", None, 0
        with block.raise_on_failure(), pytest.raises(NotificationError) as busy:
            asyncio.run(block.notify("Le guet s'est arrêté.", "Vigie"))
        assert mail.refused == 4  # the first attempt and one after each of the 3 pauses
        assert busy.value.log.startswith("SMTP 421"), busy.value.log
        assert len(mail.messages()) == 1


def test_the_block_never_sends_again_a_notice_the_server_received_without_answering(
    tmp_path: Path,
) -> None:
    """The server keeps the whole notice and drops the connection before answering: it may
    have it, so the block does not try again (a notice is not resent, docs/reliability.md)."""
    with MailSink(tmp_path / "inbox") as mail:
        mail.drop_after_receiving = 1
        block = VigieEmail(
            host="127.0.0.1",
            port=mail.port,
            security="none",
            sender=SENDER,
            timeout_s=10,
            recipients=["nadia.ouellet@laiterie-boreale.example"],
            retry_delays_s=[0.2] * 3,
        )
        with block.raise_on_failure(), pytest.raises(NotificationError) as uncertain:
            asyncio.run(block.notify("Le guet s'est arrêté.", "Vigie"))
        assert "delivery uncertain" in uncertain.value.log, uncertain.value.log
        assert len(mail.messages()) == 1
