"""Email delivery through a real aiosmtpd server: sent once, failures kept for the next try."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tasks.notify import deliver_outbox
from vigie.localservers import MailSink, free_port
from vigie.models import OutboxMessage
from vigie.settings import Email, Secrets
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def _email(port: int, **changes: object) -> Email:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "vigie@laiterie-boreale.example",
        "security": "none",
        "timeout_s": 5,
    }
    options.update(changes)
    return Email(**options)  # type: ignore[arg-type]


def _message(n: int = 1, subject: str = "[Vigie][ALERTE] Laiterie Boréale : pic") -> OutboxMessage:
    return OutboxMessage(
        message_id=f"al-{n}.opened",
        kind="alert",
        recipients=("awa.diallo@laiterie-boreale.example", "louis@laiterie-boreale.example"),
        subject=subject,
        html="<html><body><p>Rappel de fromages</p></body></html>",
        alert_id=f"al-{n}",
    )


def _deliver(path: Path, email: Email, secrets: Secrets | None = None):  # type: ignore[no-untyped-def]
    with open_warehouse(path) as con:
        store = Store(con)
        return deliver_outbox(
            store.pending_messages(10),
            email=email,
            secrets=secrets or Secrets(),
            mark_sent=lambda mid: store.mark_sent(mid, NOW),
            mark_failed=lambda mid, why: store.mark_failed(mid, why, NOW),
        )


def _queue(path: Path, *messages: OutboxMessage) -> None:
    with open_warehouse(path) as con:
        for message in messages:
            Store(con).queue(message, NOW)


def test_a_queued_message_arrives_once_with_its_subject_and_recipients(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    report = _deliver(path, _email(mail_sink.port))
    again = _deliver(path, _email(mail_sink.port))
    received = mail_sink.messages()
    assert report.sent == ["al-1.opened"] and again.sent == []
    assert len(received) == 1
    assert received[0]["Subject"] == "[Vigie][ALERTE] Laiterie Boréale : pic"
    assert [a.addr_spec for a in received[0]["To"].addresses] == [
        "awa.diallo@laiterie-boreale.example",
        "louis@laiterie-boreale.example",
    ]
    assert received[0]["Message-ID"] == "<al-1.opened@vigie>"
    assert "Rappel de fromages" in received[0].get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_queueing_the_same_message_twice_keeps_one(tmp_path: Path, mail_sink: MailSink) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message(), _message())
    _deliver(path, _email(mail_sink.port))
    assert len(mail_sink.messages()) == 1


def test_a_server_that_is_down_keeps_the_message_for_the_next_cycle(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message())
    down = _deliver(path, _email(free_port()))
    with open_warehouse(path) as con:
        attempts, error, sent_at = con.execute(
            "SELECT attempts, last_error, sent_at FROM outbox"
        ).fetchall()[0]
    assert down.sent == [] and "al-1.opened" in down.failed
    assert attempts == 1 and sent_at is None and "ConnectionRefusedError" in error
    later = _deliver(path, _email(mail_sink.port))
    assert later.sent == ["al-1.opened"]
    assert len(mail_sink.messages()) == 1


def test_header_injection_in_a_subject_stays_on_one_line(
    tmp_path: Path, mail_sink: MailSink
) -> None:
    path = tmp_path / "wh.duckdb"
    _queue(path, _message(subject="Rappel\r\nBcc: intrus@evil.example\r\nX-Evil: 1"))
    _deliver(path, _email(mail_sink.port))
    received = mail_sink.messages()[0]
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert received["Subject"] == "Rappel Bcc: intrus@evil.example X-Evil: 1"


def test_a_message_without_recipients_is_not_sent(tmp_path: Path, mail_sink: MailSink) -> None:
    path = tmp_path / "wh.duckdb"
    lonely = OutboxMessage("al-9.opened", "alert", (), "s", "<p>x</p>", "al-9")
    _queue(path, lonely)
    report = _deliver(path, _email(mail_sink.port))
    assert report.failed == {"al-9.opened": "no recipients (is the crisis cell configured?)"}
    assert mail_sink.messages() == []


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for this test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def test_starttls_with_login_verifies_the_certificate(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sender = "vigie@laiterie-boreale.example"
    secure = dict(security="starttls", username=sender, ca_file=cert)
    with MailSink(
        tmp_path / "tls-inbox", tls_context=context, authenticator=_check_password
    ) as sink:
        path = tmp_path / "wh.duckdb"
        _queue(path, _message(1))
        wrong = _deliver(path, _email(sink.port, **secure), Secrets(smtp_password="nope"))
        untrusted = _deliver(
            path,
            _email(sink.port, security="starttls", username=sender),
            Secrets(smtp_password="s3cret"),
        )
        right = _deliver(path, _email(sink.port, **secure), Secrets(smtp_password="s3cret"))
        received = sink.messages()
    assert "SMTP 535" in wrong.failed["al-1.opened"]
    assert "SSLCertVerificationError" in untrusted.failed["al-1.opened"]
    assert right.sent == ["al-1.opened"]
    assert len(received) == 1
