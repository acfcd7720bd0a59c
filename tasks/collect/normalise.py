"""Parsing and normalisation: fetched documents into mentions, in this process or in worker
processes.

From bytes only (a URL or a path is never given to a parser: feedparser would open local files
and file:// URLs); documents declaring XML entities, in whatever encoding, and documents nested
too deep or too large for feedparser are refused (`tasks.collect.xmlbounds`); an HTML page where a
feed was expected is "not a feed"; text is cleaned of markup and control characters and bounded;
URLs are made canonical and ids stable.

This module imports neither Prefect nor the HTTP client, so that the worker processes of
`parse_fetched_all` (`python -m tasks.collect.normalise`) start in a third of a second with about
40 MB each.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import logging
import pickle
import re
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from tasks.collect.fastfeed import parse_fast
from tasks.collect.xmlbounds import check_fallback_work, decode_document, screen_document
from vigie.errors import ParseError, SourceError
from vigie.matching import CompiledWatch, match_one
from vigie.models import FeedEntry, FetchResult, Mention, SourceOutcome

if TYPE_CHECKING:
    from vigie.settings import Source
from vigie.query import text_words

LOG = logging.getLogger(__name__)


class SourceFields(NamedTuple):
    """What parsing reads of a configured source (`vigie.settings.Source` has these too). A
    worker is sent these rather than the settings model, so it never imports pydantic."""

    name: str
    url: str
    platform: str
    tier: int
    language: str | None


# Below this many bytes of documents, parsing stays in this process: a worker takes about
# 0.3 s of CPU to start, and parsing, normalising and matching read about 3 MB per CPU second.
PARALLEL_MIN_BYTES = 8_000_000
# Each process gets several shares, so one slow share does not leave the other core idle.
SHARES_PER_PROCESS = 4
MAX_TITLE_CHARS = 500
MAX_SUMMARY_CHARS = 4000
_TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid"}
# An http(s) URL that canonical_url would leave as it is (lower-case host, no port, no query).
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?:/[^?#\s\\]*)?")


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

    Well-formed feeds take the fast path (`tasks.collect.fastfeed`, the C XML parser); anything it
    is not sure of, and every document when `fast` is False, goes to feedparser, which recovers
    broken documents. Both give the same entries once normalised.

    Raises:
        ParseError: empty body, entity declarations, elements nested too deep, too many
            elements for feedparser, or not a feed (an HTML page, garbage).
    """
    if not body.strip():
        raise ParseError(source, "empty document")
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    # Checked on what the parsers will read: "<!ENTITY" in UTF-16 is not "<!ENTITY" in bytes.
    decoded = decode_document(body, response_headers)
    screen_document(body, decoded[0], source=source)
    if fast:
        quick = parse_fast(
            body,
            url=response_headers["content-location"],
            headers=response_headers,
            max_entries=max_entries,
            decoded=decoded,
        )
        if quick is not None:
            return quick
    check_fallback_work(decoded[0], source=source)
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


def identity_url(url: str) -> str:
    """The form of a canonical URL that identifies an article: without the `www.` or `m.`
    (mobile) prefix of its host, so the desktop, mobile and bare-host links of one article are
    one mention. Only the id uses it: the stored URL stays the one the source gave."""
    scheme, sep, rest = url.partition("://")
    for prefix in ("www.", "m."):
        host = rest.split("/", 1)[0]
        if host.startswith(prefix) and "." in host[len(prefix) :]:
            return f"{scheme}{sep}{rest[len(prefix) :]}"
    return url


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def story_key(title: str) -> str:
    """Mentions whose titles have the same words belong to one story (syndicated copies)."""
    return _digest("story", " ".join(text_words(title)[:16]))


def normalise_entries(
    entries: Iterable[FeedEntry], *, source: SourceFields | Source, collected_at: datetime
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
            mention_id = _digest("url", identity_url(url))
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


# One parsed entry, as the merge of copies needs it when only matches are kept: its mention's
# id, summary length (the richest copy wins), publication time, and its index among the
# source's matched mentions (-1: no watch matched it).
Sighting = tuple[str, int, datetime, int]


@dataclass(frozen=True, slots=True)
class ParsedSource:
    """What one fetched source gave: its outcome and its mentions. With watches, `mentions`
    holds only those a watch matched, and `sightings` every entry (for `merge_matched`)."""

    outcome: SourceOutcome
    mentions: list[Mention]
    sightings: list[Sighting] = field(default_factory=list)


def parse_fetched(
    result: FetchResult,
    source: SourceFields | Source,
    *,
    collected_at: datetime,
    max_entries: int,
    watches: Sequence[CompiledWatch] | None = None,
) -> ParsedSource:
    """One fetched source's mentions and outcome; a source problem is the outcome, not raised.

    With `watches`, only the mentions a watch matches are kept (with their topics): in a first
    poll most entries match nothing, and they need not travel between processes or wait in
    memory. The outcome keeps the fetch without its body (its size only): nothing reads the
    body past this point, and a first poll would otherwise hold every document to the end.
    """
    body = result.body
    if body is not None:
        result = replace(result, body=None, bytes_read=len(body))
    if result.status != "ok" or (body is None and result.entries is None):
        return ParsedSource(SourceOutcome(result, result.status, error=result.error), [])
    try:
        if result.entries is not None:  # API kinds: parsed page by page as they came
            entries = list(result.entries[:max_entries])
        else:
            entries, _ = parse_feed(
                body or b"",
                source=source.name,
                url=result.final_url or source.url,
                headers=result.headers,
                max_entries=max_entries,
            )
    except SourceError as err:
        return ParsedSource(SourceOutcome(result, "error", error=err.reason), [])
    try:
        found = normalise_entries(entries, source=source, collected_at=collected_at)
    except Exception as err:
        reason = f"entries could not be normalised: {type(err).__name__}"
        return ParsedSource(SourceOutcome(result, "error", error=reason), [])
    outcome = SourceOutcome(result, "ok", items=len(found), error=result.error)
    if watches is None:
        return ParsedSource(outcome, found)
    kept: list[Mention] = []
    sightings: list[Sighting] = []
    for mention in found:
        hit = match_one(mention, watches)
        sightings.append(
            (
                mention.mention_id,
                len(mention.summary),
                mention.published_at,
                len(kept) if hit else -1,
            )
        )
        if hit is not None:
            kept.append(hit)
    return ParsedSource(outcome, kept, sightings)


def merge_matched(
    parsed: Sequence[ParsedSource],
) -> tuple[list[Mention], list[tuple[str, datetime]]]:
    """`merge_duplicates` then matching, from what `parse_fetched` kept with watches.

    Returns the matched mentions, one per id (the richest copy, with every other place it
    appeared in `seen_in`), in order of first sighting, and the source and publication time of
    every entry once merged (what the health of the watch reads), so the result is the same as
    merging every mention first and matching after.
    """
    best: dict[str, tuple[int, int, int]] = {}  # id -> (summary length, source index, sighting)
    places: dict[str, dict[str, None]] = {}
    for position, item in enumerate(parsed):
        name = item.outcome.fetch.source
        for number, (mention_id, chars, _, _) in enumerate(item.sightings):
            places.setdefault(mention_id, {})[name] = None
            kept = best.get(mention_id)
            if kept is None or chars > kept[0]:
                best[mention_id] = (chars, position, number)
    matched: list[Mention] = []
    dated: list[tuple[str, datetime]] = []
    for mention_id, (_, position, number) in best.items():
        item = parsed[position]
        _, _, published_at, index = item.sightings[number]
        dated.append((item.outcome.fetch.source, published_at))
        if index < 0:
            continue
        mention = item.mentions[index]
        others = tuple(s for s in places[mention_id] if s != mention.source)
        matched.append(replace(mention, seen_in=others) if others else mention)
    return matched, dated


Job = tuple[FetchResult, SourceFields]


def _parse_jobs(
    jobs: Sequence[Job],
    collected_at: datetime,
    max_entries: int,
    watches: Sequence[CompiledWatch] | None,
) -> list[ParsedSource]:
    """A share of the jobs (what one worker process is sent at a time)."""
    return [
        parse_fetched(
            result, source, collected_at=collected_at, max_entries=max_entries, watches=watches
        )
        for result, source in jobs
    ]


def _shares(jobs: Sequence[Job], count: int) -> list[list[Job]]:
    """`jobs` cut, in order, into about `count` runs of similar size in bytes."""
    total = sum(len(result.body or b"") for result, _ in jobs) or 1
    shares: list[list[Job]] = [[]]
    weight = 0
    for job in jobs:
        if weight >= total / count * len(shares) and len(shares) < count:
            shares.append([])
        shares[-1].append(job)
        weight += len(job[0].body or b"")
    return [share for share in shares if share]


def parses_in_workers(size: int, processes: int) -> bool:
    """Whether a batch of `size` bytes of documents is parsed by `processes` worker processes
    (`parse_fetched_all`), rather than in this process."""
    return processes >= 2 and size >= PARALLEL_MIN_BYTES


def parse_fetched_all(
    jobs: Sequence[Job],
    *,
    collected_at: datetime,
    max_entries: int,
    processes: int,
    watches: Sequence[CompiledWatch] | None = None,
) -> list[ParsedSource]:
    """`parse_fetched` of every job, in order, across `processes` worker processes.

    Parsing is pure-Python work (about 0.2 ms an entry): threads would take turns on one core,
    so a first poll of many documents is shared among processes, one per core. Small batches
    stay in this process, where they are quicker than the start of a worker (about 0.4 s).
    Workers are fresh interpreters running this module (`python -m tasks.collect.normalise`), never
    forks of this process, whose Prefect threads may hold locks. If a worker fails, its shares
    are parsed here: a document is never lost to the pool.
    """
    size = sum(len(result.body or b"") for result, _ in jobs)
    if not parses_in_workers(size, processes):
        return _parse_jobs(jobs, collected_at, max_entries, watches)
    shares = _shares(jobs, processes * SHARES_PER_PROCESS)
    results: list[list[ParsedSource] | None] = [None] * len(shares)
    pending = iter(range(len(shares)))
    taking = threading.Lock()

    def drive() -> None:
        """Feed one worker share after share until none is left."""
        try:
            worker = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as err:
            LOG.warning("a parsing worker could not start (%s): parsing in this process", err)
            return
        assert worker.stdin is not None and worker.stdout is not None
        try:
            while True:
                with taking:
                    index = next(pending, None)
                if index is None:
                    break
                pickle.dump(
                    (shares[index], collected_at, max_entries, watches), worker.stdin, protocol=5
                )
                worker.stdin.flush()
                results[index] = pickle.load(worker.stdout)
        except Exception as err:  # a worker gone or garbled: its share is parsed below
            LOG.warning(
                "a parsing worker failed (%s, exit %s): its share is parsed in this process",
                type(err).__name__,
                worker.poll(),
            )
        finally:
            with contextlib.suppress(OSError):
                worker.stdin.close()
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()

    drivers = [threading.Thread(target=drive, daemon=True) for _ in range(processes)]
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join()
    parsed: list[ParsedSource] = []
    for share, result in zip(shares, results, strict=True):
        if result is None:
            result = _parse_jobs(share, collected_at, max_entries, watches)
        parsed.extend(result)
    return parsed


def _serve() -> None:
    """A worker's loop: read a share from stdin, write what `_parse_jobs` makes of it."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            share, collected_at, max_entries, watches = pickle.load(stdin)
        except EOFError:
            return
        pickle.dump(_parse_jobs(share, collected_at, max_entries, watches), stdout, protocol=5)
        stdout.flush()


if __name__ == "__main__":
    # Through the module's own name, so that what is pickled names tasks.collect.normalise, not
    # __main__.
    from tasks.collect.normalise import _serve as serve

    serve()
