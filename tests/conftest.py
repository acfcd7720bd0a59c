"""Shared fixtures: real local servers (HTTP feeds, SMTP), temporary warehouse and config files,
and `prefect_harness`: this process's Prefect client on the session's real Prefect server."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, settings

import vigie  # noqa: F401  (telemetry off before Prefect is imported)
from tests.configs import CELL_TOML
from vigie.localservers import FeedServer, MailSink, WebhookReceiver

if TYPE_CHECKING:
    from tests.e2e.prefect_server import PrefectServer

FIXTURES = Path(__file__).parent / "fixtures"
# Tests never assert wall-clock times, Hypothesis's included: its per-example deadline and its
# "generation is slow" check fail on a loaded machine (seen in CI on a 2-core runner).
settings.register_profile("vigie", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("vigie")
# The `prefect_server` fixture: one real `prefect server start` shared by the session.
pytest_plugins = ["tests.e2e.prefect_server"]


@pytest.fixture(autouse=True)
def signal_handlers_put_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that changes how this worker handles SIGINT or SIGTERM (a command run in the
    test's process, Prefect's runner) has them put back, and is named in a warning: the next
    test's processes would inherit an ignored SIGINT (the Ctrl-C test once lost its signal so)."""
    import signal
    import warnings

    watched = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.getsignal(number) for number in watched}
    yield
    for number, handler in before.items():
        if signal.getsignal(number) is not handler:
            signal.signal(number, handler)
            warnings.warn(
                f"{request.node.nodeid} left {signal.Signals(number).name} changed",
                stacklevel=1,
            )


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """An HTTP server on a free port of 127.0.0.1 serving documents the test sets."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    """An aiosmtpd server on a free port of 127.0.0.1 that keeps every message as .eml."""
    with MailSink(tmp_path / "inbox") as sink:
        yield sink


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """An HTTP server on a free port of 127.0.0.1 keeping each webhook POST (chat channels)."""
    with WebhookReceiver() as receiver:
        yield receiver


ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a vigie.toml in tmp_path with the given sources, SMTP port and extra TOML (first
    under [collection]).

    Adaptive polling is off unless asked: the tests' cycles run seconds apart on the real clock,
    each to fetch what was just published, where the default would wait for each source's turn.
    """

    def write(
        *,
        sources: list[dict[str, object]],
        smtp_port: int,
        extra: str = "",
        watch: str = '("laiterie boréale" OR boreale) NOT recrutement',
        language: str = "fr",
        adaptive_polling: bool = False,
    ) -> Path:
        blocks = []
        for source in sources:
            fields = "\n".join(
                f"{key} = {value!r}" if isinstance(value, int) else f'{key} = "{value}"'
                for key, value in source.items()
            )
            blocks.append(f"[[sources]]\n{fields}\n")
        text = f"""
[organisation]
name = "Laiterie Boréale"
language = "{language}"
timezone = "America/Toronto"

[warehouse]
path = "wh/vigie.duckdb"

[[watch]]
name = "marque"
query = '{watch}'

{"".join(blocks)}
[email]
host = "127.0.0.1"
port = {smtp_port}
sender = "vigie@laiterie-boreale.example"
security = "none"
timeout_s = 10
{CELL_TOML}
[collection]
connect_timeout_s = 2
read_timeout_s = 2
deadline_s = 10
retries = 1
adaptive_polling = {str(adaptive_polling).lower()}
{extra}
"""
        path = tmp_path / "vigie.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def prefect_harness(prefect_server: PrefectServer) -> Iterator[str]:
    """This process's Prefect client pointed at the session's one real server (`prefect_server`),
    so flows run here are recorded there; yields its API URL. One server per test worker, not
    two: each costs a cold start and keeps its services busy on a 2-core machine."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    # The heartbeat thread adds a 1 s tail to every sync flow run (STACK.md gotcha 4).
    # The server is SQLite, shared by tests that run cycles concurrently on a 2-core machine:
    # its 503 bursts can outlast the default 5 retries (62 s of back-off).
    updates = {
        PREFECT_API_URL: prefect_server.api_url,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_CLIENT_MAX_RETRIES: 8,
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(temporary_settings(updates=updates))
        # Threads do not inherit context variables: a flow a test runs in a thread of its own
        # reads the process-wide settings, so they are these too (as prefect_test_harness does).
        stack.enter_context(
            prefect.context._temporary_global_settings_context(
                prefect.context.get_settings_context()
            )
        )
        yield prefect_server.api_url
        # Logs and events still queued go now, while the server runs: at exit they would find
        # it gone.
        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)


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


# Fixtures that start a real Prefect server (session-wide, one per xdist worker).
_SERVER_FIXTURES = frozenset({"prefect_harness", "prefect_server"})
_E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what `make check` leaves out: tests that need a Prefect server, and whole commands.

    Then run the longest first (real-clock waits, the browser, whole commands) on every worker,
    so that the workers share out the short ones at the end instead of one long test ending the
    run alone. xdist's worksteal hands each worker a contiguous slice of this order and steals
    from the end of a slice, so each slice starts with its share of the long tests.
    """
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)
        if _E2E in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
    ranked = sorted(items, key=_expected_length)
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    long = [item for item in ranked if _expected_length(item) < 3]
    short = ranked[len(long) :]
    items[:] = [item for w in range(workers) for item in long[w::workers] + short[w::workers]]


def _expected_length(item: pytest.Item) -> int:
    """0 for the longest kind of test, 3 for the shortest (a stable sort keeps file order)."""
    for rank, marker in enumerate(("slow", "browser", "e2e")):
        if item.get_closest_marker(marker) is not None:
            return rank
    return 3


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """With VIGIE_TEST_CPU_LOG=<file>, append each test's CPU seconds (this process and the
    processes it waited for: `vigie` commands, servers it stopped) as one JSON line: what to cut
    when `make test` is CPU-bound, which wall-clock durations do not tell on a loaded machine."""
    log = os.environ.get("VIGIE_TEST_CPU_LOG")
    if not log:
        yield
        return
    import json
    import resource

    def spent() -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime

    own_before, children_before = spent()
    yield
    own_after, children_after = spent()
    line = {
        "test": item.nodeid,
        "own_s": round(own_after - own_before, 2),
        "children_s": round(children_after - children_before, 2),
    }
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
