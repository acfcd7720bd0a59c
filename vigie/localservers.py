"""Real local servers for the demo and the tests: a feed server and an SMTP server that keeps mail.

`FeedServer` serves documents from memory on 127.0.0.1 (a free port), with ETag and
Last-Modified and 304 answers to conditional requests, optional per-path status codes and delays.
A route is found by the exact path with its query string, else by the path and some query
parameters (`set(..., query={"page": "1"})`, for paginated APIs), else by the path alone; every
request is recorded with its query string (`query_params`).
`MailSink` is an aiosmtpd server that writes every message it receives to a folder as `.eml`.
`WebhookReceiver` keeps every POST it accepts, as a chat service's incoming webhook would.
Both bind port 0 so they never collide with what else runs on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import email.utils
import hashlib
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, replace
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    delay_s: float = 0.0
    last_modified: str = ""
    etag: str = ""
    location: str | None = None
    headers: dict[str, str] | None = None
    # A server whose validators lie: a new ETag and Last-Modified on every answer, never a 304.
    volatile_validators: bool = False


class FeedServer:
    """An HTTP server on 127.0.0.1 serving in-memory documents; thread-safe updates.

    `host` binds another loopback address (127.0.0.2: "another machine" for the address checks).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        # path -> [(query parameters that must be present, route)], most specific first
        self.query_routes: dict[str, list[tuple[dict[str, str], Route]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        # The client (address, port) of each request: one port per TCP connection.
        self.clients: list[tuple[str, int]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.volatile_answers = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as real feed servers do (every answer carries a Content-Length).
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                self._held = True
                try:
                    self._get()
                finally:
                    self._release()

            def send_response(self, code: int, message: str | None = None) -> None:
                # In flight until its answer starts: the client may send its next request as
                # soon as this one's answer arrives, before the handler's thread ends.
                self._release()
                super().send_response(code, message)

            def _release(self) -> None:
                if getattr(self, "_held", False):
                    self._held = False
                    with server._lock:
                        server.in_flight -= 1

            def _get(self) -> None:
                with server._lock:
                    route = server._route(self.path)
                    server.requests.append((self.path, dict(self.headers.items())))
                    server.clients.append(self.client_address[:2])
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.delay_s:
                    time.sleep(route.delay_s)
                if route.volatile_validators:
                    with server._lock:
                        server.volatile_answers += 1
                        route = replace(
                            route,
                            etag=f'"{server.volatile_answers}-{route.etag.strip(chr(34))}"',
                            last_modified=email.utils.formatdate(usegmt=True),
                        )
                if route.status == 200 and (
                    self.headers.get("If-None-Match") == route.etag
                    or (
                        not self.headers.get("If-None-Match")
                        and self.headers.get("If-Modified-Since") == route.last_modified
                    )
                ):
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                if route.location:
                    self.send_header("Location", route.location)
                for name, value in (route.headers or {}).items():
                    self.send_header(name, value)
                if route.status == 200:
                    self.send_header("ETag", route.etag)
                    self.send_header("Last-Modified", route.last_modified)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

        self._host = host
        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _route(self, target: str) -> Route | None:
        """The exact route, else the most specific one whose parameters the query has, else
        the route of the path alone (call with the lock held)."""
        exact = self.routes.get(target)
        if exact is not None:
            return exact
        path, _, query = target.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        for wanted, route in self.query_routes.get(path, []):
            if all(params.get(k) == v for k, v in wanted.items()):
                return route
        return self.routes.get(path)

    def query_params(self, path: str) -> list[dict[str, str]]:
        """The query parameters of every request made so far to `path`, oldest first."""
        with self._lock:
            targets = [target for target, _ in self.requests]
        found = []
        for target in targets:
            requested, _, query = target.partition("?")
            if requested == path:
                found.append(dict(parse_qsl(query, keep_blank_values=True)))
        return found

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self._host}:{self.port}{path}"

    def set(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        status: int = 200,
        delay_s: float = 0.0,
        location: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        volatile_validators: bool = False,
    ) -> str:
        """Serve `body` at `path` (new ETag when it changes); return the full URL.

        `location` is sent as a `Location` header (with a 3xx `status`, a redirect);
        `headers` are sent as they are (for example `Content-Encoding`). With `query`, the
        route answers requests to `path` whose query string has these parameters (others may
        come along), whatever their order; the URL returned carries them.
        `volatile_validators` gives every answer a new ETag and Last-Modified (a server whose
        validators lie: the body never changes, yet it is never a 304).
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        with self._lock:
            if query:
                variants = self.query_routes.setdefault(path, [])
                old = next((r for wanted, r in variants if wanted == query), None)
            else:
                old = self.routes.get(path)
            modified = (
                old.last_modified
                if old is not None and old.etag == etag
                else email.utils.formatdate(usegmt=True)
            )
            route = Route(
                data,
                content_type,
                status,
                delay_s,
                modified,
                etag,
                location,
                headers,
                volatile_validators,
            )
            if query:
                variants[:] = [(w, r) for w, r in variants if w != query]
                variants.append((dict(query), route))
                variants.sort(key=lambda item: -len(item[0]))
            else:
                self.routes[path] = route
        return self.url(f"{path}?{urlencode(query)}" if query else path)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailSink:
    """An aiosmtpd SMTP server on 127.0.0.1 that stores each message as a `.eml` file."""

    def __init__(
        self,
        folder: Path,
        *,
        tls_context: ssl.SSLContext | None = None,
        authenticator: Any = None,
    ) -> None:
        """With `tls_context`, STARTTLS is required; with `authenticator`, so is a login."""
        from aiosmtpd.controller import Controller

        self.folder = folder
        # Set to an SMTP reply (e.g. "451 4.3.0 Try again later") to refuse the next messages.
        self.refuse_with: str | None = None
        # With `refuse_with`: refuse only this many messages, then accept again (None: all).
        self.refuse_times: int | None = None
        self.refused = 0  # messages refused so far
        # Set to a number of seconds to answer each message that late (a slow server).
        self.answer_after_s = 0.0
        # Set to N to keep the next N messages whole, then drop the connection without
        # answering (the sender cannot know the message arrived).
        self.drop_after_receiving = 0
        folder.mkdir(parents=True, exist_ok=True)
        sink = self

        class Save:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                if sink.answer_after_s:
                    await asyncio.sleep(sink.answer_after_s)
                if sink.refuse_with is not None and (
                    sink.refuse_times is None or sink.refused < sink.refuse_times
                ):
                    sink.refused += 1
                    return sink.refuse_with
                data = envelope.original_content or envelope.content
                name = f"{time.time_ns()}.eml"
                (sink.folder / name).write_bytes(data)
                if sink.drop_after_receiving > 0:
                    sink.drop_after_receiving -= 1
                    server.transport.abort()
                return "250 Message accepted for delivery"

        # aiosmtpd's controller cannot bind port 0 (it probes the port it was given), so ask
        # the system for a free port first.
        options: dict[str, Any] = {}
        if tls_context is not None:
            options.update(tls_context=tls_context, require_starttls=True)
        if authenticator is not None:
            options.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        self._controller = Controller(Save(), hostname="127.0.0.1", port=free_port(), **options)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first, parsed."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(message)  # type: ignore[arg-type]
        return found  # type: ignore[return-value]

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Hook:
    """One request a `WebhookReceiver` kept: its path and its JSON body (or raw text)."""

    path: str
    body: Any


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that keeps every POST it accepts: what a chat service's
    incoming webhook (Apprise's json://, Mattermost's /hooks/TOKEN...) would get.

    `fail_next(n, status)` answers the next `n` requests with `status` and keeps nothing;
    `hold_next(n, seconds)` keeps the next `n` requests, then answers them that late (a
    sender whose read timeout is shorter cannot know they arrived).
    """

    def __init__(self) -> None:
        self.received: list[Hook] = []
        self.requests = 0
        self._fail: list[int] = []
        self._hold: list[float] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests += 1
                    status = receiver._fail.pop(0) if receiver._fail else 200
                    delay = receiver._hold.pop(0) if status == 200 and receiver._hold else 0.0
                    if status == 200:
                        try:
                            body: Any = json.loads(raw)
                        except ValueError:
                            body = raw.decode("utf-8", "replace")
                        receiver.received.append(Hook(self.path, body))
                if delay:
                    time.sleep(delay)
                answer = b"ok" if status == 200 else b"failed"
                with contextlib.suppress(OSError):  # a sender that stopped waiting is gone
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, scheme: str, path: str) -> str:
        """An Apprise URL to this receiver, e.g. url("json", "/hook")."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail = [status] * count

    def hold_next(self, count: int, seconds: float) -> None:
        with self._lock:
            self._hold = [seconds] * count

    def at(self, path: str) -> list[Any]:
        """The bodies kept for `path`, oldest first."""
        with self._lock:
            return [hook.body for hook in self.received if hook.path == path]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
