"""Collection: fetch sources over HTTP, parse feeds from bytes, normalise entries into mentions.

Only this module talks HTTP. Every failure of a source becomes a `SourceOutcome` with a reason;
nothing here raises past `collect_sources`, so one bad source never stops a cycle.
Guards (STACK.md): bytes only are given to feedparser (it would open local paths and file://
URLs), documents declaring XML entities are refused (entity-expansion attack), bodies are capped
after decompression, and only http(s) URLs are fetched.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.health import freshness_of
from tasks.normalise import (
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
            raise FetchError("", "total deadline exceeded while reading the body")
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


class HttpClient:
    """Keep-alive connections for fetching, shared by the fetch threads (urllib3's pools are
    thread-safe): up to `per_host` idle connections are kept for each host.

    urllib3 directly rather than requests: a conditional GET costs about 0.8 ms of CPU instead
    of 2.6 ms (measured on the feed farm), which bounds an unchanged re-poll of 1,000 feeds.
    urllib3 neither retries nor follows redirects here: `fetch_source` does both, with its
    guards. Proxies come from HTTP_PROXY, HTTPS_PROXY and NO_PROXY, as with requests.
    """

    def __init__(self, per_host: int = 1) -> None:
        self._direct = urllib3.PoolManager(num_pools=64, maxsize=per_host, retries=False)
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        for scheme, proxy in urllib.request.getproxies_environment().items():
            if scheme not in ("http", "https"):
                continue
            try:
                self._proxies[scheme] = urllib3.ProxyManager(
                    proxy, num_pools=64, maxsize=per_host, retries=False
                )
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
) -> FetchResult:
    """Fetch one source with conditional GET, timeouts, a size cap and bounded retries.

    `client` is reused when given (keep-alive connections); otherwise one is made for this
    fetch. Redirects are followed up to MAX_REDIRECTS, to http and https URLs only. Never
    raises for a source problem: the result carries `status="error"` and the reason.
    """
    if client is None:
        with HttpClient() as own:
            return fetch_source(source, state, collection=collection, now=now, client=own)
    started_at = now or datetime.now(UTC)
    t0 = time.monotonic()
    deadline = t0 + collection.deadline_s
    headers = {
        "User-Agent": collection.user_agent,
        "Accept-Encoding": "gzip, deflate",
        "Accept": "*/*",
    }
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    timeout = urllib3.Timeout(connect=collection.connect_timeout_s, read=collection.read_timeout_s)

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
        try:
            response = client.get(
                *(token.apply(url, headers) if token else (url, headers)), timeout
            )
        except urllib3.exceptions.LocationValueError as err:
            return failed(f"request failed: {type(err).__name__}")
        except (urllib3.exceptions.HTTPError, OSError) as err:
            # urllib3 files a refused connection (NewConnectionError) under its timeouts.
            timed_out = isinstance(err, urllib3.exceptions.TimeoutError) and not isinstance(
                err, urllib3.exceptions.NewConnectionError
            )
            if attempt < collection.retries and time.monotonic() < deadline:
                attempt += 1
                if not timed_out:
                    time.sleep(0.5 * attempt)
                continue
            return failed("timed out" if timed_out else f"connection failed: {type(err).__name__}")
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
            return failed(f"HTTP {status} {_reason_phrase(response)}".strip(), status)
        try:
            body = _read_capped(response, max_bytes=collection.max_bytes, deadline=deadline)
        except FetchError as err:
            _discard(response)
            return failed(err.reason, status)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            _discard(response)
            return failed(f"body could not be read: {type(err).__name__}", status)
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


def host_of(url: str) -> str:
    """The host a URL is fetched from (lower case, with its port), for the per-host bound."""
    try:
        return urlsplit(url).netloc.lower().rpartition("@")[2]
    except ValueError:
        return url


class _HostScheduler:
    """Hands out sources so that at most `per_host` of one host are in flight at once.

    Workers never wait on a busy host while another host has work: the next source is taken
    from the first host, in round-robin order, that is under its bound.
    """

    def __init__(self, indexed: Iterable[tuple[int, Source]], per_host: int) -> None:
        self._queues: dict[str, deque[tuple[int, Source]]] = {}
        for item in indexed:
            self._queues.setdefault(host_of(item[1].url), deque()).append(item)
        self._hosts: deque[str] = deque(self._queues)
        self._active: dict[str, int] = dict.fromkeys(self._queues, 0)
        self._per_host = per_host
        self._cond = threading.Condition()

    def take(self) -> tuple[str, int, Source] | None:
        with self._cond:
            while True:
                if not self._hosts:
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
                self._cond.wait()

    def done(self, host: str) -> None:
        with self._cond:
            self._active[host] -= 1
            # Every waiter looks again: a host has room, or there is nothing left to take.
            self._cond.notify_all()


def fetch_any_source(
    source: Source,
    state: SourceState | None,
    *,
    collection: Collection,
    client: HttpClient | None = None,
) -> FetchResult:
    """Fetch a source of any kind: RSS in one request, the other kinds page by page through
    `tasks.sources` (which calls `fetch_source` for every request, so every guard applies)."""
    if source.kind == "rss":
        return fetch_source(source, state, collection=collection, client=client)
    from tasks.sources import fetch_api_source  # tasks.sources builds on this module

    return fetch_api_source(
        source, state, collection=collection, fetch=functools.partial(fetch_source, client=client)
    )


def fetch_sources(
    sources: Sequence[Source],
    states: Mapping[str, SourceState],
    *,
    collection: Collection,
    progress: Callable[[int, int], None] | None = None,
) -> list[FetchResult]:
    """Fetch every source concurrently, in config order.

    At most `collection.concurrency` requests are in flight, and at most `collection.per_host`
    to one host. The workers share one HttpClient, so connections are reused (keep-alive).
    `progress(done, total)` is called as each source is fetched (from the worker threads,
    one call at a time), and once with 0 before the first.
    """
    if not sources:
        return []
    results: list[FetchResult | None] = [None] * len(sources)
    scheduler = _HostScheduler(enumerate(sources), collection.per_host)
    finished = itertools.count(1)
    reporting = threading.Lock()  # counts reach `progress` in order, one at a time

    client = HttpClient(per_host=collection.per_host)

    def work() -> None:
        while (taken := scheduler.take()) is not None:
            host, index, source = taken
            try:
                results[index] = fetch_any_source(
                    source, states.get(source.name), collection=collection, client=client
                )
            finally:
                scheduler.done(host)
                if progress is not None:
                    with reporting:
                        progress(next(finished), len(sources))

    workers = [
        threading.Thread(target=work, name=f"fetch-{n}", daemon=True)
        for n in range(min(collection.concurrency, len(sources)))
    ]
    if progress is not None:
        progress(0, len(sources))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.close()
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
