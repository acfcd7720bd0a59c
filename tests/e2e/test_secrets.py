"""Secrets never leave the process that uses them: a full watch cycle logs in to a real SMTP
server (STARTTLS, a password), and then its password is looked for in every output: the
command's stdout and stderr, the emails received, the warehouse file, and everything the
temporary Prefect server stored (logs, artifacts, parameters, events: PREFECT_HOME). A second
cycle with a wrong password must not leak it in its errors either."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.localservers import FeedServer, MailSink

SECRET = "pw-Zq8!x7-vigie-secret"
WRONG = "pw-Wr0ng-vigie-not-the-secret"
SENDER = "vigie@laiterie-boreale.example"


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    ok = isinstance(data, LoginPassword) and data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


def _vigie(config: Path, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env.update(VIGIE_SMTP_PASSWORD=password, PREFECT_HOME=str(config.parent / "prefect-home"))
    return subprocess.run(
        [sys.executable, "-m", "vigie.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        cwd=config.parent,
        env=env,
    )


def _leaks(folder: Path, texts: list[str], secret: str) -> list[str]:
    """Where `secret` (as it is, or base64 as SMTP AUTH sends it) appears."""
    forms = [secret.encode(), base64.b64encode(secret.encode())]
    places = [f"output {n}" for n, text in enumerate(texts) if secret in text]
    for path in folder.rglob("*"):
        if path.is_file() and any(form in path.read_bytes() for form in forms):
            places.append(str(path))
    return places


def test_the_smtp_password_appears_in_no_output_of_a_full_cycle(
    feed_server: FeedServer,
    write_config: ConfigWriter,
    tmp_path: Path,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    sources = [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]
    with MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as sink:
        config = write_config(sources=sources, smtp_port=sink.port)
        text = config.read_text(encoding="utf-8").replace(
            'security = "none"',
            f'security = "starttls"\nusername = "{SENDER}"\nca_file = "{cert}"',
        )
        config.write_text(text, encoding="utf-8")

        good = _vigie(config, SECRET, "run", "--once", "--json")
        assert good.returncode == 0, good.stderr[-3000:]
        # The blog answers with an HTML page: the operators' notice went out, logged in.
        assert sink.messages(), "no email was sent, so the password was never used"
        status = _vigie(config, SECRET, "status")

        # Another warehouse, so that a notice is due again, and a wrong password this time.
        other = tmp_path / "wrong" / "vigie.toml"
        other.parent.mkdir()
        other.write_text(text, encoding="utf-8")
        wrong = _vigie(other, WRONG, "run", "--once", "--json")
        outbox = _vigie(other, WRONG, "outbox", "list")
        assert "535" in outbox.stdout, outbox.stdout  # the server refused that login

    outputs = [
        good.stdout,
        good.stderr,
        status.stdout,
        status.stderr,
        wrong.stdout,
        wrong.stderr,
        outbox.stdout,
        outbox.stderr,
    ]
    # The temporary server's database (logs, artifacts, parameters, events) is searched.
    assert list((tmp_path / "prefect-home").rglob("*.db"))
    assert _leaks(tmp_path, outputs, SENDER)  # the search does read the files (the emails)
    assert _leaks(tmp_path, outputs, SECRET) == []
    assert _leaks(tmp_path, outputs, WRONG) == []
