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

from cli.email_block import VigieEmail
from cli.watch_automation import email_block, notice_texts, watch_automation
from cli.watchdog import watchdog_limit
from tasks.publish.events import WATCH_WATCHED
from tests.conftest import ConfigWriter
from vigie.localservers import MailSink
from vigie.settings import load_settings

SECRET = "pw-Block-4k?-vigie-secret"
WRONG = "pw-Block-wrong-not-the-secret"
SENDER = "vigie@laiterie-boreale.example"


LOGINS: list[bytes] = []


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    LOGINS.append(data.password if isinstance(data, LoginPassword) else b"")
    ok = isinstance(data, LoginPassword) and data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


# The block holds the name of the variable; the Prefect server (here, this process) holds the
# password in its environment.
PASSWORD_ENV = {SECRET: "VIGIE_TEST_BLOCK_PASSWORD", WRONG: "VIGIE_TEST_BLOCK_WRONG_PASSWORD"}


@pytest.fixture(autouse=True)
def _server_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for password, variable in PASSWORD_ENV.items():
        monkeypatch.setenv(variable, password)


def _block(port: int, cert: Path, password: str) -> VigieEmail:
    return VigieEmail(
        host="127.0.0.1",
        port=port,
        security="starttls",
        sender=SENDER,
        username=SENDER,
        password_env=PASSWORD_ENV[password],
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
    # The block names the password's variable only when the server asks for a login, and
    # never holds the password.
    block = email_block(settings)
    assert block.password_env is None
    assert block.recipients == [m.email for m in settings.operators]
    assert SECRET not in automation.model_dump_json()


def test_the_block_reads_the_password_from_the_environment_at_send_time(
    tmp_path: Path, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    block = _block(25, cert, SECRET)
    assert SECRET not in block.model_dump_json() and SECRET not in repr(block)
    with MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as mail:
        block = block.model_copy(update={"port": mail.port})
        monkeypatch.delenv(PASSWORD_ENV[SECRET])
        reason = block.send("body", "Sujet")
        assert reason is not None and PASSWORD_ENV[SECRET] in reason
        assert "is not set in the environment of the Prefect server" in reason
        assert mail.messages() == []
        monkeypatch.setenv(PASSWORD_ENV[SECRET], SECRET)  # set where the server runs
        assert block.send("body", "Sujet") is None
        assert len(mail.messages()) == 1


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


@pytest.mark.prefect
def test_after_the_automation_setup_no_block_document_holds_the_password(
    prefect_harness: str, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What anyone who reaches the Prefect API can read: `POST /block_documents/filter` with
    `include_secrets`. A block an earlier version saved with the password is cleaned too."""
    from prefect import get_client
    from prefect.client.schemas.actions import BlockDocumentUpdate

    from cli.watch_automation import block_name, ensure_watch_automation

    monkeypatch.setenv("VIGIE_SMTP_PASSWORD", SECRET)
    config = write_config(
        sources=[{"name": "Le Quotidien", "url": "http://127.0.0.1:9/rss.xml"}],
        smtp_port=2525,
        extra="[health]\nwatchdog_minutes = 45\n",
    )
    text = config.read_text(encoding="utf-8").replace(
        'security = "none"', f'security = "starttls"\nusername = "{SENDER}"'
    )
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config)

    def readable() -> str:
        with get_client(sync_client=True) as client:
            answer = client.request(
                "POST", "/block_documents/filter", json={"include_secrets": True}
            )
        answer.raise_for_status()
        return answer.text

    ensure_watch_automation(settings, within=watchdog_limit(settings))
    assert '"password_env":"VIGIE_SMTP_PASSWORD"' in readable().replace(" ", "")
    assert SECRET not in readable()
    # A block document as an earlier version left it, the password in its data.
    with get_client(sync_client=True) as client:
        old = client.read_block_document_by_name(block_name(settings), "vigie-email")
        client.update_block_document(old.id, BlockDocumentUpdate(data={"password": SECRET}))
    assert SECRET in readable()
    ensure_watch_automation(settings, within=watchdog_limit(settings))
    assert SECRET not in readable()
