"""Collection: fetch sources over HTTP, parse feeds from bytes, normalise entries into mentions.

Only this module talks HTTP. Every failure of a source becomes a `SourceOutcome` with a reason;
nothing here raises past `collect_sources`, so one bad source never stops a cycle.
Guards (STACK.md): bytes only are given to feedparser (it would open local paths and file://
URLs), documents declaring XML entities are refused (entity-expansion attack), bodies are capped
after decompression, and only http(s) URLs are fetched.
Every request is bounded from connect to the last byte: a watchdog thread shuts down the socket
of a fetch past its deadline, whatever the server sends (headers a byte at a time included), and
`fetch_sources` waits on its threads no longer than each source's deadline plus `STEP_MARGIN_S`.
The fetch step as a whole ends within `deadline_s` plus `STEP_MARGIN_S`: the sources it had no
time for are `deferred` (not failures) and start first next cycle (`fair_order`).
A connection to a loopback, private, link-local, multicast or reserved address is refused,
checked on the address actually connected to, unless the operator named that host (the source's
own URL, or `collection.allow_hosts`).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import ipaddress
import itertools
import logging
import socket
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import urllib3
import urllib3.connection
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.collect.capacity import host_of
from tasks.collect.health import freshness_of
from tasks.collect.normalise import (
    SourceFields,
    merge_duplicates,
    merge_matched,
    parse_fetched_all,
)
from vigie.errors import ConfigError, FetchError
from vigie.matching import compile_watches
from vigie.models import (
    EntryFreshness,
    FetchResult,
    Mention,
    SourceOutcome,
    SourceState,
    SourceStatus,
)
from vigie.progress import listener
from vigie.settings import Collection, Source, Watch, source_token

_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
MAX_REASON_CHARS = 100
_MAX_RETRY_AFTER_S = 30.0
# A source failing this many cycles in a row is polled less and less often (`due_sources`).
BACKOFF_AFTER = 3
MAX_BACKOFF_CYCLES = 32
# urllib3 logs a server's malformed headers (one cut at the deadline, too) as a warning with a
# traceback; the fetch records its own one-line reason.
logging.getLogger("urllib3.connection").setLevel(logging.ERROR)
# How long past its deadline `fetch_sources` waits for a source before recording it as failed
# (the watchdog has already shut its socket: this covers what no socket bounds, such as DNS).
STEP_MARGIN_S = 2.0
HEADERS_DEADLINE = "total deadline exceeded while waiting for the response headers"
BODY_DEADLINE = "total deadline exceeded while reading the body"
# What a fetch cut at its deadline records (a read timeout is clipped to the time left).
_DEADLINE_REASONS = frozenset({HEADERS_DEADLINE, BODY_DEADLINE, "timed out"})
_CLOCK_SLACK_S = 0.05
# A fetch the step's deadline left this share of `deadline_s` short or less had its time (the
# first ones start as the step does): cut there, it failed; cut shorter, it is deferred.
_HAD_ITS_TIME = 0.05


def _reason_phrase(response: urllib3.BaseHTTPResponse) -> str:
    """The server's reason phrase, fit to record: it is untrusted text that reaches terminals
    (`vigie status`), emails and logs, so control characters (ESC, C1, CR) are dropped, and it
    is bounded."""
    reason = "".join(ch for ch in str(response.reason or "") if ch.isprintable())
    return " ".join(reason.split())[:MAX_REASON_CHARS]


def _retry_after(response: urllib3.BaseHTTPResponse, attempt: int) -> float:
    value = str(response.headers.get("Retry-After", ""))
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER_S)
    return float(min(0.5 * 2**attempt, _MAX_RETRY_AFTER_S))


def _read_capped(response: urllib3.BaseHTTPResponse, *, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("", BODY_DEADLINE)
        # read1 returns what has arrived (a server dribbling a byte a second is caught by the
        # deadline; read(n) would wait for n bytes), decompressed, so the cap also bounds a
        # compression bomb.
        chunk = response.read1(65536, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise FetchError("", f"response larger than {max_bytes} bytes (size cap)")
        chunks.append(chunk)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(address: str) -> IPAddress | None:
    """An IP address (an IPv4 one mapped into IPv6 as itself), None when it is not one."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True, slots=True)
class AllowedHosts:
    """The hosts the operator named for one source: its own URL's host and
    `collection.allow_hosts` (names, addresses or networks). Only these may be internal."""

    names: frozenset[str]
    networks: tuple[Network, ...]

    def refusal(self, host: str, address: str, *, met: set[IPAddress] | None = None) -> str | None:
        """Why a connection to `host` at `address` is refused (None: it is allowed).

        `met` gathers the addresses the named hosts were found at, and allows them: the same
        machine, by another of its names (a source on `localhost` redirected to 127.0.0.1).
        """
        host = host.strip("[]").rstrip(".").lower()
        ip = _ip(address)
        if host in self.names:
            if met is not None and ip is not None:
                met.add(ip)
            return None
        if ip is None:
            return None  # not an IP socket: nothing to judge
        if met is not None and ip in met:
            return None
        if any(ip in network for network in self.networks) or not is_internal(ip):
            return None
        return (
            f"refused: {host} is at an internal address ({ip}) that the configuration does "
            "not name (collection.allow_hosts)"
        )


def is_internal(ip: IPAddress) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified: not the web."""
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def allowed_hosts(url: str, allow: Iterable[str]) -> AllowedHosts:
    """What a source at `url` may reach among internal addresses (`AllowedHosts`)."""
    names: set[str] = set()
    networks: list[Network] = []
    try:
        own = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        own = ""
    for entry in (own, *allow):
        entry = entry.strip().strip("[]").rstrip(".").lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry)
        else:
            names.add(entry)
    return AllowedHosts(frozenset(names), tuple(networks))


class _AddressRefused(Exception):
    """A connection reached an internal address nobody configured (message: the reason)."""


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket (whose override would drop its TLS
    # state under the reading thread): a blocked recv returns at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass(eq=False)
class _FetchWatch:
    """One fetch's deadline (monotonic), what it may reach, and the sockets it uses."""

    deadline: float
    allowed: AllowedHosts
    expired: bool = False
    done: bool = False
    met: set[IPAddress] = field(default_factory=set)  # where the named hosts were found
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        """The deadline passed: every socket of this fetch is shut down."""
        with self._lock:
            if self.done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)
            self._sockets.clear()

    def release(self) -> None:
        """Stop watching the sockets (a connection going back to the pool is not ours)."""
        with self._lock:
            self._sockets.clear()

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._sockets.clear()


class _Watchdog:
    """One daemon thread for the process that expires fetches at their deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _FetchWatch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: _FetchWatch) -> None:
        with self._cond:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fetch-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                watch = heapq.heappop(self._heap)[2]
            watch.expire()


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()  # the fetch this thread is making (`_watching`)


@contextlib.contextmanager
def _watching(watch: _FetchWatch) -> Iterator[_FetchWatch]:
    """Bound every connection this thread opens or reuses meanwhile by `watch`."""
    _WATCHDOG.add(watch)
    _CURRENT.watch = watch
    try:
        yield watch
    finally:
        _CURRENT.watch = None
        watch.finish()


def _admit(connection: urllib3.connection.HTTPConnection, sock: socket.socket) -> None:
    """Put `sock` under the current fetch's deadline, and refuse an internal address the
    configuration does not name: checked on the peer, so after DNS, for every request."""
    watch: _FetchWatch | None = getattr(_CURRENT, "watch", None)
    if watch is None:
        return
    watch.watch(sock)
    if connection.proxy is not None:
        return  # connected to the proxy the environment names; it resolves the host
    try:
        address = str(sock.getpeername()[0])
    except (OSError, IndexError, TypeError):
        return  # not connected: the request fails on its own
    refusal = watch.allowed.refusal(connection.host, address, met=watch.met)
    if refusal is not None:
        with contextlib.suppress(OSError):
            sock.close()
        raise _AddressRefused(refusal)


class _GuardedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _admit(self, sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: checked again for this fetch
            _admit(self, self.sock)
        super().request(*args, **kwargs)


class _GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _admit(self, sock)  # the TCP socket: bounds the TLS handshake too
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # the TLS socket, fresh or kept alive
            _admit(self, self.sock)
        super().request(*args, **kwargs)


class _GuardedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_GUARDED_POOLS: dict[str, type[urllib3.HTTPConnectionPool]] = {
    "http": _GuardedHTTPPool,
    "https": _GuardedHTTPSPool,
}


class HttpClient:
    """Keep-alive connections for fetching, shared by the fetch threads (urllib3's pools are
    thread-safe): up to `per_host` idle connections are kept for each host.

    urllib3 directly rather than requests: a conditional GET costs about 0.8 ms of CPU instead
    of 2.6 ms (measured on the feed farm), which bounds an unchanged re-poll of 1,000 feeds.
    urllib3 neither retries nor follows redirects here: `fetch_source` does both, with its
    guards. Proxies come from HTTP_PROXY, HTTPS_PROXY and NO_PROXY, as with requests.
    Its connections put themselves under the deadline and address checks of the fetch their
    thread is making (`fetch_source`).
    """

    def __init__(self, per_host: int = 1) -> None:
        self._direct = urllib3.PoolManager(num_pools=64, maxsize=per_host, retries=False)
        self._direct.pool_classes_by_scheme = _GUARDED_POOLS
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        for scheme, proxy in urllib.request.getproxies_environment().items():
            if scheme not in ("http", "https"):
                continue
            try:
                self._proxies[scheme] = urllib3.ProxyManager(
                    proxy, num_pools=64, maxsize=per_host, retries=False
                )
                self._proxies[scheme].pool_classes_by_scheme = _GUARDED_POOLS
            except (ValueError, urllib3.exceptions.HTTPError) as err:
                raise ConfigError(
                    f"{scheme.upper()}_PROXY={proxy!r} is not a proxy URL ({err}): fix or unset it"
                ) from None

    def get(
        self, url: str, headers: Mapping[str, str], timeout: urllib3.Timeout
    ) -> urllib3.BaseHTTPResponse:
        """Send one GET; the response's body is not read yet."""
        parts = urlsplit(url)
        manager = self._proxies.get(parts.scheme, self._direct)
        if manager is not self._direct and urllib.request.proxy_bypass(parts.hostname or ""):
            manager = self._direct
        return manager.urlopen(
            "GET",
            url,
            headers=dict(headers),
            timeout=timeout,
            redirect=False,
            retries=False,
            preload_content=False,
        )

    def close(self) -> None:
        self._direct.clear()
        for manager in self._proxies.values():
            manager.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a response whose body is not wanted: an endless body is never read to its end."""
    response.close()
    response.release_conn()


def fetch_result(
    source: Source, status: SourceStatus, *, started_at: datetime, t0: float, **fields: Any
) -> FetchResult:
    """The result of a fetch of `source` that began at `started_at` (monotonic `t0`)."""
    return FetchResult(
        source=source.name,
        url=source.url,
        status=status,
        started_at=started_at,
        duration_s=time.monotonic() - t0,
        **fields,
    )


def deferred_fetch(source: Source, reason: str, *, started_at: datetime, t0: float) -> FetchResult:
    """The result of a source the fetch step had no time left for: not a failure."""
    return fetch_result(source, "deferred", started_at=started_at, t0=t0, error=reason)


def failed_fetch(
    source: Source,
    reason: str,
    *,
    started_at: datetime,
    t0: float,
    http_status: int | None = None,
) -> FetchResult:
    """The result of a fetch that failed: the reason recorded, never raised."""
    return fetch_result(
        source, "error", started_at=started_at, t0=t0, http_status=http_status, error=reason
    )


def fetch_source(
    source: Source,
    state: SourceState | None,
    *,
    collection: Collection,
    now: datetime | None = None,
    client: HttpClient | None = None,
    step_deadline: float | None = None,
) -> FetchResult:
    """Fetch one source with conditional GET, timeouts, a size cap and bounded retries.

    `client` is reused when given (keep-alive connections); otherwise one is made for this
    fetch. Redirects are followed up to MAX_REDIRECTS, to http and https URLs only. Every
    connection is bounded by `collection.deadline_s` from the start of the fetch (a watchdog
    shuts its socket at the deadline) and may reach an internal address only when the operator
    named its host (`allowed_hosts`). Never raises for a source problem: the result carries
    `status="error"` and the reason.

    `step_deadline` (monotonic) is when the whole fetch step ends: a fetch is cut there too,
    and one cut there before its own deadline is `deferred` (fetched first next cycle), not
    failed: the source had not had its time.
    """
    if client is None:
        with HttpClient() as own:
            return fetch_source(
                source,
                state,
                collection=collection,
                now=now,
                client=own,
                step_deadline=step_deadline,
            )
    started_at = now or datetime.now(UTC)
    t0 = time.monotonic()
    own_deadline = t0 + collection.deadline_s
    deadline = own_deadline if step_deadline is None else min(own_deadline, step_deadline)
    allowed = allowed_hosts(source.url, collection.allow_hosts)
    with _watching(_FetchWatch(deadline, allowed)) as watch:
        result = _fetch_watched(
            source, state, collection, client, started_at=started_at, t0=t0, watch=watch
        )
    if (
        deadline < own_deadline - _HAD_ITS_TIME * collection.deadline_s
        and result.status == "error"
        and result.error in _DEADLINE_REASONS
        and time.monotonic() >= deadline - _CLOCK_SLACK_S
    ):
        return deferred_fetch(
            source,
            f"cut at the fetch step's deadline {time.monotonic() - t0:.1f} s into its fetch: "
            "fetched first next cycle",
            started_at=started_at,
            t0=t0,
        )
    return result


def _fetch_watched(
    source: Source,
    state: SourceState | None,
    collection: Collection,
    client: HttpClient,
    *,
    started_at: datetime,
    t0: float,
    watch: _FetchWatch,
) -> FetchResult:
    """`fetch_source` under its watch (deadline, allowed hosts)."""
    deadline = watch.deadline
    headers = {
        "User-Agent": collection.user_agent,
        "Accept-Encoding": "gzip, deflate",
        "Accept": "*/*",
    }
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified

    try:
        token = read_token(source)
    except FetchError as err:
        return failed_fetch(source, err.reason, started_at=started_at, t0=t0)

    def failed(reason: str, http_status: int | None = None) -> FetchResult:
        if token is not None:  # a server may echo the token in a reason phrase or a Location
            reason = token.redact(reason)
        return failed_fetch(source, reason, started_at=started_at, t0=t0, http_status=http_status)

    url = source.url
    attempt = 0
    redirects = 0
    while True:
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            return failed(
                "redirected to a non-HTTP URL (refused)"
                if redirects
                else "not an http(s) URL (refused)"
            )
        literal = _literal_refusal(url, watch)  # checked here too, for proxies
        if literal is not None:
            return failed(literal)
        left = deadline - time.monotonic()
        if left <= 0 or watch.expired:
            return failed(HEADERS_DEADLINE)
        timeout = urllib3.Timeout(
            connect=min(collection.connect_timeout_s, left),
            read=min(collection.read_timeout_s, left),
        )
        try:
            response = client.get(
                *(token.apply(url, headers) if token else (url, headers)), timeout
            )
        except _AddressRefused as err:
            return failed(str(err))
        except urllib3.exceptions.LocationValueError as err:
            return failed(f"request failed: {type(err).__name__}")
        except (urllib3.exceptions.HTTPError, OSError) as err:
            if watch.expired:
                return failed(HEADERS_DEADLINE)
            # urllib3 files a refused connection (NewConnectionError) under its timeouts.
            timed_out = isinstance(err, urllib3.exceptions.TimeoutError) and not isinstance(
                err, urllib3.exceptions.NewConnectionError
            )
            if attempt < collection.retries and time.monotonic() < deadline:
                attempt += 1
                if not timed_out:
                    time.sleep(max(0.0, min(0.5 * attempt, deadline - time.monotonic())))
                continue
            return failed("timed out" if timed_out else f"connection failed: {type(err).__name__}")
        if watch.expired:  # the headers were cut at the deadline: what came is not an answer
            _discard(response)
            return failed(HEADERS_DEADLINE)
        status = response.status
        location = response.headers.get("Location")
        if status in _REDIRECT_STATUS and location:
            _discard(response)
            redirects += 1
            if redirects > MAX_REDIRECTS:
                return failed("too many redirects")
            url = urljoin(url, location.strip())
            continue
        if status in _RETRYABLE_STATUS and attempt < collection.retries:
            wait = _retry_after(response, attempt)
            if time.monotonic() + wait < deadline:
                _discard(response)
                attempt += 1
                time.sleep(wait)
                continue
        if status == 304:
            _discard(response)
            return fetch_result(
                source,
                "not_modified",
                started_at=started_at,
                t0=t0,
                http_status=304,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
            )
        if status >= 400:
            _discard(response)
            refused = failed(f"HTTP {status} {_reason_phrase(response)}".strip(), status)
            retry_after = response.headers.get("Retry-After")
            if retry_after:  # kept for adaptive polling's next poll (tasks/collect/schedule.py)
                refused = replace(refused, headers={"retry-after": retry_after[:100]})
            return refused
        try:
            body = _read_capped(response, max_bytes=collection.max_bytes, deadline=deadline)
        except FetchError as err:
            _discard(response)
            return failed(err.reason, status)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            _discard(response)
            if watch.expired:
                return failed(BODY_DEADLINE, status)
            return failed(f"body could not be read: {type(err).__name__}", status)
        if watch.expired:  # the socket was shut at the deadline: what came is not the body
            _discard(response)
            return failed(BODY_DEADLINE, status)
        watch.release()  # the connection goes back to the pool, out of this fetch's watch
        response.release_conn()
        return fetch_result(
            source,
            "ok",
            started_at=started_at,
            t0=t0,
            http_status=status,
            body=body,
            headers={name.lower(): response.headers[name] for name in response.headers},
            final_url=url if token is None else token.redact(url),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )


def _literal_refusal(url: str, watch: _FetchWatch) -> str | None:
    """The refusal of a URL whose host is an internal IP address the configuration does not
    name (a host name is judged on the address it resolves to, when connected)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    if _ip(host) is None:
        return None
    return watch.allowed.refusal(host, host, met=watch.met)


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the default port spelt out."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        return scheme, (parts.hostname or "").lower(), port
    except ValueError:
        return "", url, None


@dataclass(frozen=True, slots=True)
class SourceToken:
    """A source's token, read from its environment variable at fetch time (never from the
    file, never a task parameter), and sent only to the origin of the source's URL."""

    value: str
    origin: tuple[str, str, int | None]
    header: str | None  # None: sent as the query parameter `param`
    param: str | None

    def redact(self, text: str) -> str:
        """`text` with the token (as it is, or as it appears in a URL's query) masked."""
        for form in {self.value, urlencode({"": self.value})[1:]}:
            text = text.replace(form, "***")
        return text

    def apply(self, url: str, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The URL and headers of a request to `url`, with the token when `url` is at the
        source's origin: a redirect elsewhere never carries it."""
        if url_origin(url) != self.origin:
            return url, dict(headers)
        if self.header is not None:
            value = f"Bearer {self.value}" if self.header.lower() == "authorization" else self.value
            return url, {**headers, self.header: value}
        # Appended to the query as it is: re-encoding it could change what the API reads.
        parts = urlsplit(url)
        added = urlencode({str(self.param): self.value})
        query = f"{parts.query}&{added}" if parts.query else added
        return urlunsplit(parts._replace(query=query)), dict(headers)


def read_token(source: Source) -> SourceToken | None:
    """The token `source` needs, from its variable, now (None: it needs none).

    Raises:
        FetchError: the variable is unset or unusable (`source_token`), never its value.
    """
    try:
        value = source_token(source)
    except ConfigError as err:
        raise FetchError(source.name, str(err)) from None
    if value is None:
        return None
    header = None if source.token_param else (source.token_header or "Authorization")
    return SourceToken(value, url_origin(source.url), header, source.token_param)


class _HostScheduler:
    """Hands out sources so that at most `per_host` of one host are in flight at once, until
    the step's deadline (monotonic `ends`), after which it hands out nothing.

    Workers never wait on a busy host while another host has work: the next source is taken
    from the first host, in round-robin order, that is under its bound; within a host, in the
    order given (`fair_order`).
    """

    def __init__(self, indexed: Iterable[tuple[int, Source]], per_host: int, ends: float) -> None:
        self._queues: dict[str, deque[tuple[int, Source]]] = {}
        for item in indexed:
            self._queues.setdefault(host_of(item[1].url), deque()).append(item)
        self._hosts: deque[str] = deque(self._queues)
        self._active: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._per_host = per_host
        self._ends = ends
        self._cond = threading.Condition()

    def take(self) -> tuple[str, int, Source] | None:
        with self._cond:
            while True:
                left = self._ends - time.monotonic()
                if not self._hosts or left <= 0:
                    return None
                for _ in range(len(self._hosts)):
                    host = self._hosts[0]
                    self._hosts.rotate(-1)
                    if self._active[host] < self._per_host:
                        queue = self._queues[host]
                        index, source = queue.popleft()
                        if not queue:
                            self._hosts.remove(host)
                        self._active[host] += 1
                        return host, index, source
                self._cond.wait(min(left, 1.0))

    def done(self, host: str) -> None:
        with self._cond:
            self._active[host] -= 1
            # Every waiter looks again: a host has room, or there is nothing left to take.
            self._cond.notify_all()

    def close(self) -> list[tuple[int, Source]]:
        """Hand out nothing more; what was never taken, in the order it would have been."""
        with self._cond:
            left: list[tuple[int, Source]] = []
            while self._hosts:  # round-robin, as `take` would have handed them out
                host = self._hosts.popleft()
                left.append(self._queues[host].popleft())
                if self._queues[host]:
                    self._hosts.append(host)
            self._cond.notify_all()
            return left


_NEVER = datetime.min.replace(tzinfo=UTC)
# `fetch_sources(ends_at=NO_STEP_DEADLINE)`: every source is fetched, however long it takes
# (`vigie sources test`); each one is still bounded by `deadline_s`.
NO_STEP_DEADLINE = datetime.max.replace(tzinfo=UTC)


def fair_order(sources: Sequence[Source], states: Mapping[str, SourceState]) -> list[int]:
    """The positions of `sources` in the order the fetch step starts them: never polled first,
    then the oldest last poll (`last_run_at`, which a deferred run leaves as it was), the
    configuration's order among equals. So a source deferred when the step ran out of time
    goes before those fetched, next cycle, and none waits more than its share.
    """

    def last_poll(position: int) -> tuple[bool, datetime, int]:
        state = states.get(sources[position].name)
        last = state.last_run_at if state is not None else None
        return last is not None, last or _NEVER, position

    return sorted(range(len(sources)), key=last_poll)


def fetch_any_source(
    source: Source,
    state: SourceState | None,
    *,
    collection: Collection,
    client: HttpClient | None = None,
    step_deadline: float | None = None,
) -> FetchResult:
    """Fetch a source of any kind: RSS in one request, the other kinds page by page through
    `tasks.collect.sources` (which calls `fetch_source` for every request, so every guard
    applies, the step's deadline included)."""
    if source.kind == "rss":
        return fetch_source(
            source, state, collection=collection, client=client, step_deadline=step_deadline
        )
    from tasks.collect.sources import (
        fetch_api_source,
    )  # tasks.collect.sources builds on this module

    return fetch_api_source(
        source,
        state,
        collection=collection,
        fetch=functools.partial(fetch_source, client=client, step_deadline=step_deadline),
    )


def fetch_sources(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    *,
    collection: Collection,
    progress: Callable[[int, int], None] | None = None,
    ends_at: datetime | None = None,
) -> list[FetchResult]:
    """Fetch every source concurrently; the results in the order of `sources`.

    At most `collection.concurrency` requests are in flight, and at most `collection.per_host`
    to one host. The workers share one HttpClient, so connections are reused (keep-alive).
    Sources start in `fair_order` (never polled, then the oldest last poll first).
    `progress(done, total)` is called as each source is fetched (from the worker threads,
    one call at a time), and once with 0 before the first.

    The step as a whole ends at `ends_at` (wall clock; None: `deadline_s` after it starts)
    plus `STEP_MARGIN_S`, whatever the servers do and however many sources there are: a source
    not started by then is `deferred` (not a failure; it goes first next cycle), as is one cut
    there before its own deadline. No source holds the step: one still running
    `STEP_MARGIN_S` past its deadline (which the watchdog enforces on its sockets; this covers
    what no socket bounds) is recorded as failed, or deferred if it is the step's deadline,
    and left behind.
    """
    if not sources:
        return []
    results: list[FetchResult | None] = [None] * len(sources)
    start = time.monotonic()
    if ends_at is None:
        step_end = start + collection.deadline_s
    else:
        step_end = start + (ends_at - datetime.now(UTC)).total_seconds()
    scheduler = _HostScheduler(
        ((i, sources[i]) for i in fair_order(sources, states)), collection.per_host, step_end
    )
    finished = itertools.count(1)
    reporting = threading.Lock()  # counts reach `progress` in order, one at a time
    state = threading.Condition()  # guards `running` and `results`; notified as each ends
    # index -> (monotonic start, host, the worker fetching it)
    running: dict[int, tuple[float, str, threading.Thread]] = {}
    left_behind: set[threading.Thread] = set()  # workers still stuck on an abandoned source
    recorded = [0]  # results filled so far
    limit_s = collection.deadline_s + STEP_MARGIN_S
    step_limit = step_end + STEP_MARGIN_S

    client = HttpClient(per_host=collection.per_host)

    def report() -> None:
        if progress is not None:
            with reporting:
                progress(next(finished), len(sources))

    def work() -> None:
        while (taken := scheduler.take()) is not None:
            host, index, source = taken
            with state:
                running[index] = (time.monotonic(), host, threading.current_thread())
            result: FetchResult | None = None
            try:
                result = fetch_any_source(
                    source,
                    states.get(source.name),
                    collection=collection,
                    client=client,
                    step_deadline=step_end,
                )
            finally:
                with state:
                    abandoned = index not in running
                    running.pop(index, None)
                    if not abandoned:
                        results[index] = result
                        recorded[0] += result is not None
                    state.notify_all()
                if not abandoned:
                    scheduler.done(host)
                    report()
            if abandoned:
                return  # recorded; another worker took this one's place
        with state:
            state.notify_all()  # nothing left to take (or the step's time is up)

    workers: list[threading.Thread] = []

    def start_worker() -> None:
        worker = threading.Thread(target=work, name=f"fetch-{len(workers)}", daemon=True)
        workers.append(worker)
        worker.start()

    def abandon(index: int, now: float, reason: str, *, deferred: bool) -> None:
        began, host, worker = running.pop(index)
        left_behind.add(worker)
        started_at = datetime.now(UTC) - timedelta(seconds=now - began)
        record = deferred_fetch if deferred else failed_fetch
        results[index] = record(sources[index], reason, started_at=started_at, t0=began)
        recorded[0] += 1
        scheduler.done(host)

    if progress is not None:
        progress(0, len(sources))
    for _ in range(min(collection.concurrency, len(sources))):
        start_worker()
    while True:
        late: list[int] = []
        with state:
            if recorded[0] == len(results):
                break
            if not running and not any(w.is_alive() for w in workers if w not in left_behind):
                break  # every worker ended: the step's deadline, or an unexpected error
            now = time.monotonic()
            for index, (began, _, _) in list(running.items()):
                # As in `fetch_source`: one that had nearly all its deadline_s had its time.
                had_its_time = began + (1 - _HAD_ITS_TIME) * collection.deadline_s <= step_end
                if now - began > limit_s or (now > step_limit and had_its_time):
                    abandon(
                        index,
                        now,
                        f"still fetching {limit_s:g} s after it started (deadline_s = "
                        f"{collection.deadline_s:g}): abandoned",
                        deferred=False,
                    )
                elif now > step_limit:
                    abandon(
                        index,
                        now,
                        f"still fetching at the fetch step's deadline, {now - began:.1f} s "
                        "into its fetch: abandoned, fetched first next cycle",
                        deferred=True,
                    )
                else:
                    continue
                late.append(index)
            if not late:
                soonest = min((began for began, _, _ in running.values()), default=now)
                wake = min(soonest + limit_s, step_limit) - now
                state.wait(max(0.05, min(1.0, wake)))
        for _ in late:
            report()
            if time.monotonic() < step_end:
                start_worker()
    client.close()
    not_started = scheduler.close()
    if time.monotonic() < step_end:
        not_started = []  # every worker died before the step's end: recorded below as such
    for index, source in not_started:
        results[index] = deferred_fetch(
            source,
            "not started before the fetch step's deadline (deadline_s = "
            f"{collection.deadline_s:g}): fetched first next cycle",
            started_at=datetime.now(UTC),
            t0=time.monotonic(),
        )
        report()
    missing = [i for i, r in enumerate(results) if r is None]
    for index in missing:  # a worker died on an unexpected error: record it, never hide it
        results[index] = FetchResult(
            source=sources[index].name,
            url=sources[index].url,
            status="error",
            started_at=datetime.now(UTC),
            duration_s=0.0,
            error="fetch crashed (internal error)",
        )
    return [r for r in results if r is not None]


def due_sources(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    now: datetime,
    *,
    cycle_minutes: float,
) -> tuple[list[Source], dict[str, str]]:
    """Split sources into those to fetch this cycle and those skipped, with the reason.

    A source with `poll_minutes` is skipped until that long after its last run. A source that
    failed `BACKOFF_AFTER` cycles in a row or more is skipped for 2^(failures - 3) cycles,
    at most `MAX_BACKOFF_CYCLES`, after its last run. Half a cycle of slack absorbs the jitter
    of the schedule. Sources never run are always due.
    """
    due: list[Source] = []
    skipped: dict[str, str] = {}
    slack = timedelta(minutes=cycle_minutes / 2)
    for source in sources:
        state = states.get(source.name)
        if state is None or state.last_run_at is None:
            due.append(source)
            continue
        since = now - state.last_run_at
        failures = state.consecutive_failures
        if failures >= BACKOFF_AFTER:
            cycles = min(2 ** (failures - BACKOFF_AFTER), MAX_BACKOFF_CYCLES)
            if since + slack < timedelta(minutes=cycle_minutes * (cycles + 1)):
                skipped[source.name] = (
                    f"backing off for {cycles} cycle(s) after {failures} failures in a row"
                )
                continue
        if source.poll_minutes is not None and since + slack < timedelta(
            minutes=source.poll_minutes
        ):
            skipped[source.name] = f"polled every {source.poll_minutes} min"
            continue
        due.append(source)
    return due, skipped


def source_fields(source: Source) -> SourceFields:
    """What parsing needs of a source, light enough to send to a worker process."""
    return SourceFields(source.name, source.url, source.platform, source.tier, source.language)


def collect_sources(
    sources: Sequence[Source],
    fetched: Sequence[FetchResult],
    *,
    collected_at: datetime,
    max_entries: int,
    processes: int = 1,
) -> tuple[list[Mention], list[SourceOutcome]]:
    """Parse and normalise what was fetched; one outcome per source, failures included.

    `processes` > 1 shares a large batch among that many worker processes (`parse_fetched_all`).
    """
    by_name = {s.name: s for s in sources}
    parsed = parse_fetched_all(
        [(result, source_fields(by_name[result.source])) for result in fetched],
        collected_at=collected_at,
        max_entries=max_entries,
        processes=processes,
    )
    mentions = [mention for item in parsed for mention in item.mentions]
    return merge_duplicates(mentions), [item.outcome for item in parsed]


@dataclass(frozen=True, slots=True)
class MatchedCollection:
    """A cycle's documents parsed and matched: what the watches kept, and what the rest says."""

    matched: list[Mention]  # one per id, with its topics; the richest copy, as merge_duplicates
    outcomes: list[SourceOutcome]
    entries: int  # entries parsed, duplicates merged
    freshness: dict[str, EntryFreshness]  # per source, for the health of the watch


def collect_matching(
    sources: Sequence[Source],
    fetched: Sequence[FetchResult],
    watches: Sequence[Watch],
    *,
    collected_at: datetime,
    max_entries: int,
    processes: int = 1,
) -> MatchedCollection:
    """`collect_sources` then `match_mentions`, with the same result, in one pass per source.

    Each document is parsed, normalised and matched where it is parsed (a worker process when
    the batch is large), so only the matched mentions come back and are kept.
    """
    by_name = {s.name: s for s in sources}
    parsed = parse_fetched_all(
        [(result, source_fields(by_name[result.source])) for result in fetched],
        collected_at=collected_at,
        max_entries=max_entries,
        processes=processes,
        watches=compile_watches(watches),
    )
    matched, dated = merge_matched(parsed)
    return MatchedCollection(
        matched=matched,
        outcomes=[item.outcome for item in parsed],
        entries=len(dated),
        freshness=freshness_of((source, at, collected_at) for source, at in dated),
    )


@task(name="fetch-sources", cache_policy=NO_CACHE)
def fetch_sources_task(
    sources: Sequence[Source], states: Mapping[str, SourceState], collection: Collection
) -> list[FetchResult]:
    """Fetch every configured source concurrently."""
    # `vigie run` shows the fetch's progress (vigie.progress); a deployment's run has no listener.
    return fetch_sources(sources, states, collection=collection, progress=listener("fetch"))


@task(name="parse-and-normalise", cache_policy=NO_CACHE)
def collect_sources_task(
    sources: Sequence[Source],
    fetched: Sequence[FetchResult],
    collected_at: datetime,
    max_entries: int,
) -> tuple[list[Mention], list[SourceOutcome]]:
    """Parse fetched bodies and normalise their entries into mentions."""
    return collect_sources(sources, fetched, collected_at=collected_at, max_entries=max_entries)


@task(name="parse-and-match", cache_policy=NO_CACHE)
def collect_matching_task(
    sources: Sequence[Source],
    fetched: Sequence[FetchResult],
    watches: Sequence[Watch],
    collected_at: datetime,
    collection: Collection,
) -> MatchedCollection:
    """Parse fetched documents, normalise their entries, keep those a watch query matches."""
    return collect_matching(
        sources,
        fetched,
        watches,
        collected_at=collected_at,
        max_entries=collection.max_entries,
        processes=collection.parse_process_count(),
    )
