"""Secrets never leave the process that uses them: a full watch cycle logs in to a real SMTP
server (STARTTLS, a password) and reads a source that needs a token (an API key, sent as a
query parameter, which the server echoes in a redirect), and then the password and the token
are looked for in every output (and a chat channel's token, which only the configuration
file may hold): the command's stdout and stderr, the emails received, the
warehouse file, and everything a Prefect server of the test's own stored (logs, artifacts,
parameters, events: its PREFECT_HOME). A second cycle with a wrong password must not leak it in
its errors either."""

from __future__ import annotations

import base64
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.commands import prefect_api_vars, vigie
from tests.conftest import ConfigWriter
from tests.e2e.prefect_server import PrefectServer, running_prefect_server
from vigie import scenario
from vigie.localservers import FeedServer, MailSink

SECRET = "pw-Zq8!x7-vigie-secret"
WRONG = "pw-Wr0ng-vigie-not-the-secret"
TOKEN = "tok-Agence-7Hq2-vigie-api-key"
# An Apprise URL holds its service's token: the settings carry it into every task.
CHANNEL_TOKEN = "chan-Mm7q-vigie-webhook-token"
CHANNEL_MEMBER = f"""
[[cell.members]]
name = "Nadia Cloutier"
email = "nadia.cloutier@laiterie-boreale.example"
role = "communications"
channels = ["mmosts://chat.laiterie-boreale.example/{CHANNEL_TOKEN}"]
"""
AGENCE = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Agence</title>
<item><title>La Laiterie Boréale ouvre une usine</title><link>/depeches/1</link>
<guid>agence-1</guid></item></channel></rss>"""
SENDER = "vigie@laiterie-boreale.example"


def _check_password(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
    ok = isinstance(data, LoginPassword) and data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


def _vigie(
    server: PrefectServer, config: Path, password: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "VIGIE_SMTP_PASSWORD": password, "VIGIE_AGENCE_TOKEN": TOKEN}
    return vigie(
        "--config",
        str(config),
        *args,
        env=env,
        drop=prefect_api_vars(),
        cwd=config.parent,
        timeout=600,
    )


def _leaks(folder: Path, texts: list[str], secret: str) -> list[str]:
    """Where `secret` (as it is, or base64 as SMTP AUTH sends it) appears."""
    forms = [secret.encode(), base64.b64encode(secret.encode())]
    places = [f"output {n}" for n, text in enumerate(texts) if secret in text]
    for path in folder.rglob("*"):
        if path.is_file() and any(form in path.read_bytes() for form in forms):
            places.append(str(path))
    # DuckDB may compress strings on disk: its tables are read too.
    for path in folder.rglob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as db:
            tables = db.execute("SELECT table_name FROM information_schema.tables").fetchall()
            for (table,) in tables:
                rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
                if secret in repr(rows):
                    places.append(f"{path}:{table}")
    return places


def test_the_smtp_password_and_a_source_token_appear_in_no_output_of_a_full_cycle(
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
    feed_server.set("/agence", b"", status=302, location=f"/agence.xml?vu={TOKEN}")
    feed_server.set("/agence.xml", AGENCE)
    agence = {"name": "Agence (API)", "url": feed_server.url("/agence"), "tier": 2}
    sources.append(agence | {"token_env": "VIGIE_AGENCE_TOKEN", "token_param": "key"})
    (tmp_path / "prefect-home").mkdir()
    with (
        # A server of its own, its database in this test's folder, where the search looks.
        running_prefect_server(home=tmp_path / "prefect-home") as server,
        MailSink(tmp_path / "inbox", tls_context=context, authenticator=_check_password) as sink,
    ):
        config = write_config(sources=sources, smtp_port=sink.port)
        text = (
            config.read_text(encoding="utf-8").replace(
                'security = "none"',
                f'security = "starttls"\nusername = "{SENDER}"\nca_file = "{cert}"',
            )
            + CHANNEL_MEMBER
        )
        config.write_text(text, encoding="utf-8")

        good = _vigie(server, config, SECRET, "run", "--once", "--json")
        assert good.returncode == 0, good.stderr[-3000:]
        # The blog answers with an HTML page: the operators' notice went out, logged in.
        assert sink.messages(), "no email was sent, so the password was never used"
        status = _vigie(server, config, SECRET, "status")
        asked = [path for path, _ in feed_server.requests if path.startswith("/agence?")]
        assert asked == [f"/agence?key={TOKEN}"]  # the source got its token, once

        # Another warehouse, so that a notice is due again, and a wrong password this time.
        other = tmp_path / "wrong" / "vigie.toml"
        other.parent.mkdir()
        other.write_text(text, encoding="utf-8")
        wrong = _vigie(server, other, WRONG, "run", "--once", "--json")
        outbox = _vigie(server, other, WRONG, "outbox", "list")
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
    # The server's database (logs, artifacts, parameters, events) is searched.
    assert list((tmp_path / "prefect-home").rglob("*.db"))
    assert _leaks(tmp_path, outputs, SENDER)  # the search does read the files (the emails)
    assert _leaks(tmp_path, outputs, SECRET) == []
    assert _leaks(tmp_path, outputs, WRONG) == []
    assert any(":mentions" in place for place in _leaks(tmp_path, outputs, "/depeches/1"))
    assert _leaks(tmp_path, outputs, TOKEN) == []
    assert _leaks(tmp_path, outputs, CHANNEL_TOKEN) == [str(config), str(other)]
