"""Collection: fetch sources over HTTP, parse feeds from bytes, normalise entries into mentions.

Only this module talks HTTP. Every failure of a source becomes a `SourceOutcome` with a reason;
nothing here raises past `collect_sources`, so one bad source never stops a cycle.
Guards (STACK.md): bytes only are given to feedparser (it would open local paths and file://
URLs), documents declaring XML entities are refused (entity-expansion attack), bodies are capped
after decompression, and only http(s) URLs are fetched.
"""

from __future__ import annotations

import functools
import hashlib
import html
import itertools
import re
import threading
import time
import unicodedata
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import urllib3
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.fastfeed import parse_fast
from vigie.errors import ConfigError, FetchError, ParseError, SourceError
from vigie.models import FeedEntry, FetchResult, Mention, SourceOutcome, SourceState
from vigie.progress import listener
from vigie.query import text_words
from vigie.settings import Collection, Source

MAX_TITLE_CHARS = 500
MAX_SUMMARY_CHARS = 4000
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_REDIRECT_STATUS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
_MAX_RETRY_AFTER_S = 30.0
_TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid"}
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
# An http(s) URL that canonical_url would leave as it is (lower-case host, no port, no query).
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?:/[^?#\s\\]*)?")
# A source failing this many cycles in a row is polled less and less often (`due_sources`).
BACKOFF_AFTER = 3
MAX_BACKOFF_CYCLES = 32


def _retry_after(response: urllib3.BaseHTTPResponse, attempt: int) -> float:
    value = str(response.headers.get("Retry-After", ""))
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER_S)
    return float(min(0.5 * 2**attempt, _MAX_RETRY_AFTER_S))


def _read_capped(response: urllib3.BaseHTTPResponse, *, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    # stream() decompresses gzip and deflate, so the cap also bounds a compression bomb.
    for chunk in response.stream(65536, decode_content=True):
        total += len(chunk)
        if total > max_bytes:
            raise FetchError("", f"response larger than {max_bytes} bytes (size cap)")
        if time.monotonic() > deadline:
            raise FetchError("", "total deadline exceeded while reading the body")
        chunks.append(chunk)
    return b"".join(chunks)


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


def failed_fetch(
    source: Source,
    reason: str,
    *,
    started_at: datetime,
    t0: float,
    http_status: int | None = None,
) -> FetchResult:
    """The result of a fetch that failed: the reason recorded, never raised."""
    return FetchResult(
        source=source.name,
        url=source.url,
        status="error",
        started_at=started_at,
        duration_s=time.monotonic() - t0,
        http_status=http_status,
        error=reason,
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

    def failed(reason: str, http_status: int | None = None) -> FetchResult:
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
            response = client.get(url, headers, timeout)
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
            return FetchResult(
                source=source.name,
                url=source.url,
                status="not_modified",
                started_at=started_at,
                duration_s=time.monotonic() - t0,
                http_status=304,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
            )
        if status >= 400:
            _discard(response)
            return failed(f"HTTP {status} {response.reason or ''}".strip(), status)
        try:
            body = _read_capped(response, max_bytes=collection.max_bytes, deadline=deadline)
        except FetchError as err:
            _discard(response)
            return failed(err.reason, status)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            _discard(response)
            return failed(f"body could not be read: {type(err).__name__}", status)
        response.release_conn()
        return FetchResult(
            source=source.name,
            url=source.url,
            status="ok",
            started_at=started_at,
            duration_s=time.monotonic() - t0,
            http_status=status,
            body=body,
            headers={name.lower(): response.headers[name] for name in response.headers},
            final_url=url,
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )


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


def _struct_to_utc(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def parse_feed(
    body: bytes,
    *,
    source: str,
    url: str,
    headers: Mapping[str, str],
    max_entries: int,
    fast: bool = True,
) -> tuple[list[FeedEntry], str | None]:
    """Parse an RSS, Atom or RDF document from bytes; return its entries and its language.

    Well-formed feeds take the fast path (`tasks.fastfeed`, the C XML parser); anything it is
    not sure of, and every document when `fast` is False, goes to feedparser, which recovers
    broken documents. Both give the same entries once normalised.

    Raises:
        ParseError: empty body, entity declarations, or not a feed (an HTML page, garbage).
    """
    if not body.strip():
        raise ParseError(source, "empty document")
    if _ENTITY_DECLARATION.search(body):
        raise ParseError(source, "document declares XML entities (refused: expansion attack)")
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    if fast:
        quick = parse_fast(
            body,
            url=response_headers["content-location"],
            headers=response_headers,
            max_entries=max_entries,
        )
        if quick is not None:
            return quick
    parsed = feedparser.parse(body, response_headers=response_headers)
    if not parsed.get("version") and not parsed.entries:
        head = body[:2048].lower()
        if b"<html" in head or b"<!doctype html" in head:
            raise ParseError(source, "not a feed: an HTML page")
        problem = parsed.get("bozo_exception")
        detail = f" ({type(problem).__name__})" if problem else ""
        raise ParseError(source, f"not a feed{detail}")
    language = parsed.feed.get("language") if parsed.get("feed") else None
    entries: list[FeedEntry] = []
    for item in parsed.entries[:max_entries]:
        summary = item.get("summary") or ""
        if not summary and item.get("content"):
            summary = item["content"][0].get("value", "")
        entries.append(
            FeedEntry(
                title=item.get("title", ""),
                link=item.get("link"),
                guid=item.get("id"),
                summary=summary,
                author=item.get("author"),
                published_at=_struct_to_utc(
                    item.get("published_parsed") or item.get("updated_parsed")
                ),
                language=language,
            )
        )
    return entries, language


_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)


class _TextExtractor(HTMLParser):
    """Text content of HTML; block elements separate words, script and style are dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible(ch: str) -> str:
    category = unicodedata.category(ch)
    if category in {"Cc", "Zl", "Zp"}:
        return " "  # line breaks, tabs, NUL: a separator
    if category == "Cf":
        return ""  # soft hyphens, zero-width and bidirectional controls: invisible, dropped
    return ch


# Characters outside these ranges may be control, format or separator characters (checked
# against the whole Unicode database by the tests); text without any skips `_visible`.
_MAYBE_INVISIBLE = re.compile(
    "[^\x20-\x7e\xa0-\xac\xae-\u05ff\u0606-\u061b\u061d-\u06dc\u06de-\u070e"
    "\u0710-\u088f\u0892-\u08e1\u08e3-\u180d\u180f-\u200a\u2010-\u2027\u202f-\u205f"
    "\u2070-\ufefe\uff00-\ufff8]"
)
# What `_visible` makes of each character seen so far (bounded: text comes from the network).
_VISIBLE: dict[str, str] = {}
# A tag as HTMLParser reads it, in the plain shape feeds use: name, attributes, quoted values.
_SIMPLE_TAG = re.compile(
    r"<(?:/([a-zA-Z][a-zA-Z0-9]*)\s*|([a-zA-Z][a-zA-Z0-9]*)"
    r"(?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*\s*/?)>"
)
_RAW_TEXT_TAGS = frozenset({"script", "style"})


def _simple_html_text(value: str) -> str | None:
    """The text `_TextExtractor` would give, for HTML made only of simple tags; else None.

    Every `<` must open a well-formed tag (no comments, no stray `<`) and no script or style
    element may appear: then tags split the text into runs that HTMLParser unescapes as they
    are, and block tags separate words. Anything else is left to HTMLParser.
    """
    # split() gives [text, end tag name, start tag name, text, ...]: a text run every third.
    pieces = _SIMPLE_TAG.split(value)
    texts = pieces[::3]
    if any("<" in text for text in texts):
        return None
    names = [(end or start).lower() for end, start in zip(pieces[1::3], pieces[2::3], strict=True)]
    if not _RAW_TEXT_TAGS.isdisjoint(names):
        return None
    parts = [html.unescape(text) if "&" in text else text for text in texts]
    out = [parts[0]]
    for name, text in zip(names, parts[1:], strict=True):
        out.append(" " if name in _BLOCK_TAGS else "")
        out.append(text)
    return "".join(out)


def _html_text(value: str) -> str:
    """Text content of an HTML fragment (character references decoded)."""
    simple = _simple_html_text(value)
    if simple is not None:
        return simple
    extractor = _TextExtractor()  # decodes character references itself
    extractor.feed(value)
    extractor.close()
    return "".join(extractor.parts)


def clean_text(value: str | None, max_chars: int) -> str:
    """Plain text from untrusted HTML: tags and control characters gone, spaces collapsed."""
    if not value:
        return ""
    if "<" in value:
        value = _html_text(value)
    elif "&" in value:
        value = html.unescape(value)
    if _MAYBE_INVISIBLE.search(value) is not None:
        # Each distinct character is looked up once, not each occurrence.
        changes: dict[int, str] = {}
        for ch in set(value):
            seen = _VISIBLE.get(ch)
            if seen is None:
                seen = _visible(ch)
                if len(_VISIBLE) < 100_000:
                    _VISIBLE[ch] = seen
            if seen != ch:
                changes[ord(ch)] = seen
        if changes:
            value = value.translate(changes)
    value = " ".join(value.split())  # str.split and regex \s agree on what a space is
    if len(value) > max_chars:
        value = value[: max_chars - 1].rstrip() + "…"
    return value


def canonical_url(url: str) -> str:
    """A stable form of an http(s) URL: lower-case scheme and host, no fragment or tracking.

    Raises:
        ValueError: the URL cannot be split (bad port, unclosed IPv6 bracket).
    """
    url = url.strip()
    if _PLAIN_URL.fullmatch(url):
        return url if "/" in url[8:] else url + "/"  # already in canonical form
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address keeps its brackets
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in _TRACKING_PARAMS
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def story_key(title: str) -> str:
    """Mentions whose titles have the same words belong to one story (syndicated copies)."""
    return _digest("story", " ".join(text_words(title)[:16]))


def normalise_entries(
    entries: Iterable[FeedEntry], *, source: Source, collected_at: datetime
) -> list[Mention]:
    """Turn parsed entries into mentions: clean text, canonical URL, stable id, UTC times."""
    mentions: list[Mention] = []
    for entry in entries:
        link = (entry.link or "").strip()
        is_http = link.lower().startswith(("http://", "https://"))
        url = link[:2000]
        if is_http:
            try:
                url = canonical_url(link)
            except ValueError:
                # Kept under a non-http scheme so that validation quarantines it, visibly.
                is_http = False
                url = f"invalid:{link[:2000]}"
        title = clean_text(entry.title, MAX_TITLE_CHARS)
        if is_http:
            mention_id = _digest("url", url)
        elif entry.guid:
            mention_id = _digest("guid", source.name, entry.guid)
        else:
            mention_id = _digest("title", source.name, title, str(entry.published_at))
        language = source.language or (entry.language or "")[:2].lower() or None
        mentions.append(
            Mention(
                mention_id=mention_id,
                source=source.name,
                platform=source.platform,
                tier=source.tier,
                url=url,
                title=title,
                summary=clean_text(entry.summary, MAX_SUMMARY_CHARS),
                author=clean_text(entry.author, 200) or None,
                published_at=entry.published_at or collected_at,
                collected_at=collected_at,
                language=language if language in {"fr", "en"} else None,
                story_id=story_key(title),
                reach=entry.reach,
            )
        )
    return mentions


def merge_duplicates(mentions: Iterable[Mention]) -> list[Mention]:
    """One mention per id: the copy with the longest text wins (the richest), and it keeps the
    names of the other sources that carried it (`seen_in`), so no place it appeared is lost."""
    best: dict[str, Mention] = {}
    places: dict[str, dict[str, None]] = {}
    for mention in mentions:
        kept = best.get(mention.mention_id)
        seen = places.setdefault(mention.mention_id, {})
        seen[mention.source] = None
        seen.update(dict.fromkeys(mention.seen_in))
        if kept is None or len(mention.summary) > len(kept.summary):
            best[mention.mention_id] = mention
    return [
        replace(m, seen_in=tuple(s for s in places[key] if s != m.source))
        if len(places[key]) > 1
        else m
        for key, m in best.items()
    ]


def collect_sources(
    sources: Sequence[Source],
    fetched: Sequence[FetchResult],
    *,
    collected_at: datetime,
    max_entries: int,
) -> tuple[list[Mention], list[SourceOutcome]]:
    """Parse and normalise what was fetched; one outcome per source, failures included."""
    by_name = {s.name: s for s in sources}
    mentions: list[Mention] = []
    outcomes: list[SourceOutcome] = []
    for result in fetched:
        if result.status != "ok" or (result.body is None and result.entries is None):
            outcomes.append(SourceOutcome(result, result.status, error=result.error))
            continue
        source = by_name[result.source]
        try:
            if result.entries is not None:  # API kinds: parsed page by page as they came
                entries = list(result.entries[:max_entries])
            else:
                entries, _ = parse_feed(
                    result.body or b"",
                    source=source.name,
                    url=result.final_url or source.url,
                    headers=result.headers,
                    max_entries=max_entries,
                )
        except SourceError as err:
            outcomes.append(SourceOutcome(result, "error", error=err.reason))
            continue
        try:
            found = normalise_entries(entries, source=source, collected_at=collected_at)
        except Exception as err:
            reason = f"entries could not be normalised: {type(err).__name__}"
            outcomes.append(SourceOutcome(result, "error", error=reason))
            continue
        mentions.extend(found)
        outcomes.append(SourceOutcome(result, "ok", items=len(found), error=result.error))
    return merge_duplicates(mentions), outcomes


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
