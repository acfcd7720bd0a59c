"""Source kinds beyond RSS: JSON Feed, news search feeds, Reddit, Mastodon, Bluesky, Hacker News
(Algolia), GDELT DOC 2.0 and any JSON API with a mapping. Plain functions, one concern each:

- `plan_requests(source, state)`: the first URL of each search the source runs this cycle;
- `parse_document(source, body, ...)`: one page's entries, its newest marker and the next page;
- `fetch_api_source(source, state, collection=...)`: reads page after page, through
  `tasks.collect.fetch.fetch_source` for every request (timeouts, deadline, size cap, http(s)-only
  redirects, retries with Retry-After, User-Agent), until what is new since the last cycle is
  read, and returns the entries with the marker to remember.

Markers (`SourceState.marker`, the `sources.marker` column) are strings ordered by length then
text: a Mastodon status id, or a Unix time in seconds for Reddit, Bluesky, Hacker News, GDELT,
JSON Feed and JSON APIs. A timestamp marker is inclusive (items of its second are read again and
merged by their id), never later than the clock, and only moves forward when every page was read
without error; Bluesky's cursor and Reddit's `after` page through one cycle only.

Bounds: each page gets what is left of `max_bytes` and `deadline_s` (and of the fetch step's
time: a source whose first page the step had no time for is `deferred`), each search at most
`max_pages` pages, and all pages together at most `max_entries` entries and `max_bytes` bytes.
JSON is untrusted: `json.loads` runs on the size-capped bytes, every field is type-checked, an item
without what identifies it is skipped, a field of the wrong type is left empty; a body that is not
JSON is a `ParseError("not JSON")` recorded for the source.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from tasks.collect.fetch import failed_fetch, fetch_source, url_origin
from tasks.collect.normalise import clean_text, parse_feed
from vigie.errors import ParseError
from vigie.models import FeedEntry, FetchResult, OutsideVolume, SourceState
from vigie.search import MAX_TERMS, split_or
from vigie.settings import Collection, JsonMapping, Source

# Kinds whose one document supports conditional GET (ETag, Last-Modified) like an RSS feed.
CONDITIONAL_KINDS = frozenset({"jsonfeed", "news_search"})
# Kinds whose marker is a Unix time (kept no later than the clock).
TIMESTAMP_MARKER_KINDS = frozenset(
    {"reddit", "bluesky", "hackernews", "jsonfeed", "json_api", "gdelt"}
)
TITLE_CHARS = 200  # a post has no title: its first characters stand for one
MASTODON_LIMIT = 40  # the largest page Mastodon serves
PAGE_LIMIT = 100  # the largest page of Reddit, Bluesky and Algolia
GDELT_MAX_RECORDS = 250  # the most articles the GDELT DOC API gives for one request
GDELT_PATH = "/api/v2/doc/doc"
GDELT_TIMELINE_SPAN = "1d"  # a fixed span keeps the timeline's buckets the same width
GDELT_LANGUAGES = {"french": "fr", "english": "en"}
_GDELT_TIME = "%Y%m%dT%H%M%SZ"
_MAX_REACH = 10**15
WEB_ORIGINS = {
    "reddit": "https://www.reddit.com",
    "bluesky": "https://bsky.app",
    "hackernews": "https://news.ycombinator.com",
}

Fetcher = Callable[..., FetchResult]


@dataclass(frozen=True, slots=True)
class Page:
    """What one response gave: entries new since the marker, the newest marker on the page,
    the URL of the next page (None: nothing more to read, always so once the page reached
    items already seen) and whether it did."""

    entries: list[FeedEntry] = field(default_factory=list)
    newest: str | None = None
    next_url: str | None = None
    reached: bool = False
    volumes: list[OutsideVolume] = field(default_factory=list)  # a volume timeline's points


# --- markers -----------------------------------------------------------------------------------


def _order(marker: str) -> tuple[int, str]:
    # Digit strings (ids, Unix times) compare as numbers; Mastodon-compatible servers whose ids
    # are fixed-width sortable strings compare the same way.
    return (len(marker), marker)


def newer(a: str | None, b: str | None) -> str | None:
    """The later of two markers (None is the earliest)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if _order(a) >= _order(b) else b


def _seconds(when: datetime | None) -> str | None:
    return None if when is None else str(math.floor(when.timestamp()))


def _older_than(when: datetime | None, marker: str | None) -> bool:
    """Published before the marker's second: read in an earlier cycle."""
    if when is None or marker is None or not marker.isdigit():
        return False
    return when.timestamp() < int(marker)


class PageFill:
    """The loop every kind shares over one page's items: at most `max_entries` entries, the
    newest marker seen, and whether the page reached what an earlier cycle read (then there is
    no next page to read)."""

    def __init__(self, marker: str | None, max_entries: int) -> None:
        self.marker = marker
        self.max_entries = max_entries
        self.entries: list[FeedEntry] = []
        self.newest: str | None = None
        self.reached = False

    def dicts(self, items: list[Any]) -> Iterator[dict[str, Any]]:
        """The items that are JSON objects, until the page holds `max_entries` entries."""
        for item in items:
            if len(self.entries) >= self.max_entries:
                return
            if isinstance(item, dict):
                yield item

    def read_before(self, when: datetime | None) -> bool:
        """Note `when` as a marker; True when an earlier cycle read it (published before the
        marker's second), and the page has then reached what was seen."""
        self.newest = newer(self.newest, _seconds(when))
        if _older_than(when, self.marker):
            self.reached = True
            return True
        return False

    def page(self, next_url: str | None) -> Page:
        return Page(self.entries, self.newest, None if self.reached else next_url, self.reached)


# --- untrusted JSON ----------------------------------------------------------------------------


def load_json(body: bytes, source: str) -> Any:
    """Parse a size-capped body. Raises ParseError("not JSON") for anything else."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError
        raise ParseError(source, "not JSON") from err


def get_path(document: Any, path: str) -> Any:
    """The value at a dotted path (`data.items`, `authors.0.name`), or None when absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any, *, lenient: bool = False) -> int | None:
    """A count from JSON: an int, or an integral float; with `lenient`, digits in a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif lenient and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        return None
    return max(0, min(number, _MAX_REACH))


def _id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()[:200]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 / RFC 3339 string as an aware UTC datetime (naive is taken as UTC)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def epoch_time(value: Any) -> datetime | None:
    """A Unix time (seconds, or milliseconds when that large) as a UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds > 1e11:
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _http_url(value: Any, base: str | None = None) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        return None
    url = urljoin(base, value.strip()) if base else value.strip()
    return url if url.lower().startswith(("http://", "https://")) else None


def with_params(url: str, **params: str | int | None) -> str:
    """`url` with these query parameters set (None removes one), the others kept in order."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _language(value: Any) -> str | None:
    text = _str(value)
    return text[:2].lower() if text else None


def _title_from(html_or_text: str) -> str:
    return clean_text(html_or_text, TITLE_CHARS)


# --- planning ----------------------------------------------------------------------------------


def _base(source: Source) -> str:
    return source.url.rstrip("/")


def _searches(source: Source) -> list[str]:
    """The searches of a source whose engine does not read OR: one per alternative."""
    if not source.query:
        return []
    return split_or(source.query)[:MAX_TERMS]


def plan_requests(source: Source, state: SourceState | None) -> list[str]:
    """The first URL of each request chain the source runs this cycle.

    Raises:
        ValueError: a search kind without a query (a Source built outside the settings).
    """
    marker = state.marker if state is not None else None
    kind = source.kind
    base = _base(source)
    if kind in {"jsonfeed", "json_api"}:
        return [source.url]
    if kind in {"news_search", "reddit", "bluesky", "hackernews", "gdelt"} and not source.query:
        raise ValueError(f"kind {kind!r} needs a query (query = ..., or a watch query)")
    if kind == "news_search":
        language, region = source.language or "en", source.region or "US"
        params = {
            "q": source.query,
            "hl": f"{language}-{region}",
            "gl": region,
            "ceid": f"{region}:{language}",
        }
        return [f"{base}/rss/search?{urlencode(params)}"]
    if kind == "reddit":
        path = "/search.json"
        params = {"q": source.query, "sort": "new", "limit": str(PAGE_LIMIT), "raw_json": "1"}
        if source.subreddit:
            path = f"/r/{quote(source.subreddit.removeprefix('r/'))}/search.json"
            params["restrict_sr"] = "1"
        return [f"{base}{path}?{urlencode(params)}"]
    if kind == "mastodon":
        urls = []
        cursor = {"min_id": marker} if marker else {}
        if source.hashtag:
            urls.append(
                f"{base}/api/v1/timelines/tag/{quote(source.hashtag)}?"
                + urlencode({"limit": str(MASTODON_LIMIT), **cursor})
            )
        for search in _searches(source):
            params = {"q": search, "type": "statuses", "limit": str(MASTODON_LIMIT), **cursor}
            urls.append(f"{base}/api/v2/search?{urlencode(params)}")
        return urls
    if kind == "bluesky":
        urls = []
        for search in _searches(source):
            params = {"q": search, "sort": "latest", "limit": str(PAGE_LIMIT)}
            if source.language:
                params["lang"] = source.language
            if marker and marker.isdigit():
                since = datetime.fromtimestamp(int(marker), UTC)
                params["since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
            urls.append(f"{base}/xrpc/app.bsky.feed.searchPosts?{urlencode(params)}")
        return urls
    if kind == "hackernews":
        urls = []
        for search in _searches(source):
            params = {"query": search, "tags": "(story,comment)", "hitsPerPage": str(PAGE_LIMIT)}
            if marker and marker.isdigit():
                params["numericFilters"] = f"created_at_i>={marker}"
            urls.append(f"{base}/api/v1/search_by_date?{urlencode(params)}")
        return urls
    if kind == "gdelt":
        return gdelt_requests(source, marker)
    raise ValueError(f"kind {kind!r} is not read by tasks/collect/sources.py")


def gdelt_query(source: Source) -> str:
    """The GDELT DOC query of a source: its alternatives OR-ed inside parentheses (GDELT reads
    OR only there), narrowed to the source's language when it has one."""
    alternatives = _searches(source)
    query = alternatives[0] if len(alternatives) == 1 else f"({' OR '.join(alternatives)})"
    names = {code: name for name, code in GDELT_LANGUAGES.items()}
    if source.language in names:
        query += f" sourcelang:{names[source.language]}"
    return query


def gdelt_requests(source: Source, marker: str | None) -> list[str]:
    """The articles matching the source's query, newest first, since the marker (a Unix time:
    the newest `seendate` read), then the volume timeline of the same query."""
    base = f"{_base(source)}{GDELT_PATH}"
    query = gdelt_query(source)
    articles: dict[str, str] = {
        "query": query,
        "mode": "artlist",
        "format": "json",
        "maxrecords": str(GDELT_MAX_RECORDS),
        "sort": "datedesc",
    }
    if marker and marker.isdigit():
        since = datetime.fromtimestamp(int(marker), UTC)
        articles["startdatetime"] = since.strftime("%Y%m%d%H%M%S")
    timeline = {
        "query": query,
        "mode": "timelinevolraw",
        "format": "json",
        "timespan": GDELT_TIMELINE_SPAN,
    }
    return [f"{base}?{urlencode(articles)}", f"{base}?{urlencode(timeline)}"]


# --- parsers, one per kind ---------------------------------------------------------------------


def _jsonfeed_author(holder: Mapping[str, Any]) -> str | None:
    authors = holder.get("authors")  # 1.1
    if isinstance(authors, list):
        for author in authors:
            if isinstance(author, dict) and _str(author.get("name")):
                return str(author["name"])
    author = holder.get("author")  # 1.0
    if isinstance(author, dict):
        return _str(author.get("name"))
    return None


def parse_jsonfeed(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1): `items` with `id`, `url`,
    `title`, `content_html` / `content_text` / `summary`, `date_published`, `authors`."""
    document = load_json(body, source.name)
    version = get_path(document, "version")
    if not isinstance(document, dict) or not _text(version).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError(source.name, "not a JSON Feed (no jsonfeed.org version)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(source.name, "JSON Feed without an items list")
    feed_language = _language(document.get("language"))
    feed_author = _jsonfeed_author(document)
    fill = PageFill(marker, max_entries)
    for item in fill.dicts(items):
        guid = _id(item.get("id"))
        link = _http_url(item.get("url"), url) or _http_url(item.get("external_url"), url)
        if guid is None and link is None:
            continue
        body_html = _text(item.get("content_html")) or _text(item.get("content_text"))
        summary = _text(item.get("summary")) or body_html
        title = _text(item.get("title")) or _title_from(summary)
        if not title.strip():
            continue
        published = iso_time(item.get("date_published")) or iso_time(item.get("date_modified"))
        fill.read_before(published)  # kept all the same: a feed's order is not guaranteed
        fill.entries.append(
            FeedEntry(
                title=title,
                link=link,
                guid=guid,
                summary=summary,
                author=_jsonfeed_author(item) or feed_author,
                published_at=published,
                language=_language(item.get("language")) or feed_language,
            )
        )
    return fill.page(_http_url(document.get("next_url"), url))


def parse_news_search(
    body: bytes, source: Source, *, url: str, headers: Mapping[str, str], max_entries: int
) -> Page:
    """A news search feed (Google News RSS): RSS 2.0 read by `parse_feed`, whose item titles
    are "Headline - Publisher"; the publisher becomes the author."""
    entries, _ = parse_feed(
        body, source=source.name, url=url, headers=headers, max_entries=max_entries
    )
    found = []
    for entry in entries:
        title, author = entry.title, entry.author
        headline, sep, publisher = title.rpartition(" - ")
        if sep and headline.strip() and publisher.strip() and len(publisher) <= 100:
            title, author = headline.strip(), author or publisher.strip()
        found.append(
            FeedEntry(
                title=title,
                link=entry.link,
                guid=entry.guid,
                summary=entry.summary,
                author=author,
                published_at=entry.published_at,
                language=entry.language,
            )
        )
    return Page(found)


def parse_reddit(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """A Reddit listing (`/search.json`): `data.children[].data` posts with `name`, `title`,
    `selftext`, `permalink`, `author`, `created_utc`, `score`; `data.after` pages on."""
    document = load_json(body, source.name)
    data = get_path(document, "data")
    if get_path(document, "kind") != "Listing" or not isinstance(data, dict):
        raise ParseError(source.name, "not a Reddit listing")
    children = data.get("children")
    if not isinstance(children, list):
        raise ParseError(source.name, "Reddit listing without children")
    fill = PageFill(marker, max_entries)
    for child in fill.dicts(children):
        post = child.get("data")
        if not isinstance(post, dict):
            continue
        published = epoch_time(post.get("created_utc"))
        if fill.read_before(published):
            continue
        if published is not None and marker is not None and _seconds(published) == marker:
            fill.reached = True  # the newest item of the last cycle: everything after is older
        permalink = _str(post.get("permalink"))
        link = (
            WEB_ORIGINS["reddit"] + permalink
            if permalink and permalink.startswith("/")
            else _http_url(post.get("url"))
        )
        guid = _id(post.get("name")) or _id(post.get("id"))
        title = _text(post.get("title")) or _title_from(_text(post.get("selftext")))
        if (link is None and guid is None) or not title.strip():
            continue
        author = _str(post.get("author"))
        fill.entries.append(
            FeedEntry(
                title=title,
                link=link,
                guid=guid,
                summary=_text(post.get("selftext")),
                author=None if author in {"[deleted]", "[removed]"} else author,
                published_at=published,
                language=None,
                reach=_int(post.get("score")),
            )
        )
    after = _str(data.get("after"))
    return fill.page(with_params(url, after=after) if after and children else None)


def _mastodon_status(status: dict[str, Any]) -> FeedEntry | None:
    if isinstance(status.get("reblog"), dict):
        status = status["reblog"]  # a boost: the boosted post is the mention
    guid = _id(status.get("id"))
    link = _http_url(status.get("url")) or _http_url(status.get("uri"))
    if guid is None and link is None:
        return None
    content = _text(status.get("content"))
    spoiler = _text(status.get("spoiler_text"))
    title = _title_from(spoiler or content)
    if not title:
        return None
    account = status.get("account")
    account = account if isinstance(account, dict) else {}
    author = _str(account.get("display_name")) or _str(account.get("acct"))
    return FeedEntry(
        title=title,
        link=link,
        guid=_str(status.get("uri")) or guid,
        summary=content,
        author=author,
        published_at=iso_time(status.get("created_at")),
        language=_language(status.get("language")),
        reach=_int(account.get("followers_count")),
    )


def parse_mastodon(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """Mastodon statuses: a list (`/api/v1/timelines/tag/:tag`) or `statuses` of
    `/api/v2/search`. Status: `id`, `url`, `uri`, `created_at`, `content` (HTML), `language`,
    `account.display_name`, `account.followers_count`. Newer pages come with `min_id`; a first
    cycle reads older pages with `max_id`."""
    document = load_json(body, source.name)
    statuses = document.get("statuses") if isinstance(document, dict) else document
    if not isinstance(statuses, list):
        raise ParseError(source.name, "not a list of Mastodon statuses")
    # Marked by status id, not by time: ids order a server's statuses.
    fill = PageFill(marker, max_entries)
    ids: list[str] = []
    for status in fill.dicts(statuses):
        status_id = _id(status.get("id"))
        if status_id is not None:
            ids.append(status_id)
            if marker is not None and _order(status_id) <= _order(marker):
                fill.reached = True  # the server should not send these; never read them twice
                continue
        entry = _mastodon_status(status)
        if entry is not None:
            fill.entries.append(entry)
    fill.newest = max(ids, key=_order) if ids else None
    next_url = None
    if ids and marker is None:
        next_url = with_params(url, max_id=min(ids, key=_order), min_id=None)
    elif ids:
        next_url = with_params(url, min_id=fill.newest, max_id=None)
    return fill.page(next_url)


def parse_bluesky(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """`app.bsky.feed.searchPosts`: `posts` of PostView (`uri`, `author.handle`,
    `author.displayName`, `record.text`, `record.createdAt`, `record.langs`, `indexedAt`,
    `likeCount`, `repostCount`) and a `cursor` for the next page."""
    document = load_json(body, source.name)
    posts = get_path(document, "posts")
    if not isinstance(document, dict) or not isinstance(posts, list):
        raise ParseError(source.name, "not a searchPosts response (no posts list)")
    fill = PageFill(marker, max_entries)
    for post in fill.dicts(posts):
        uri = _str(post.get("uri"))
        record = post.get("record")
        record = record if isinstance(record, dict) else {}
        author = post.get("author")
        author = author if isinstance(author, dict) else {}
        text = _text(record.get("text"))
        if uri is None or not uri.startswith("at://") or not text.strip():
            continue
        # The server's clock (indexedAt) orders and marks: a client may claim any createdAt.
        indexed = iso_time(post.get("indexedAt"))
        published = iso_time(record.get("createdAt")) or indexed
        if fill.read_before(indexed or published):
            continue
        did, _, rest = uri.removeprefix("at://").partition("/")
        rkey = rest.rpartition("/")[2]
        handle = _str(author.get("handle")) or did
        link = f"{WEB_ORIGINS['bluesky']}/profile/{quote(handle)}/post/{quote(rkey)}"
        likes, reposts = _int(post.get("likeCount")), _int(post.get("repostCount"))
        langs = record.get("langs")
        fill.entries.append(
            FeedEntry(
                title=_title_from(text),
                link=link if rkey else None,
                guid=uri,
                summary=text,
                author=_str(author.get("displayName")) or _str(author.get("handle")),
                published_at=published,
                language=_language(langs[0]) if isinstance(langs, list) and langs else None,
                reach=None if likes is None and reposts is None else (likes or 0) + (reposts or 0),
            )
        )
    cursor = _str(document.get("cursor"))
    return fill.page(with_params(url, cursor=cursor) if cursor and posts else None)


def parse_hackernews(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """Algolia's HN search (`/api/v1/search_by_date`): `hits` with `objectID`, `title` or
    `story_title`, `story_text` / `comment_text`, `author`, `points`, `created_at_i`; `page` and
    `nbPages` page on."""
    document = load_json(body, source.name)
    hits = get_path(document, "hits")
    if not isinstance(document, dict) or not isinstance(hits, list):
        raise ParseError(source.name, "not an Algolia search response (no hits list)")
    fill = PageFill(marker, max_entries)
    for hit in fill.dicts(hits):
        object_id = _id(hit.get("objectID"))
        if object_id is None or not object_id.isdigit():
            continue
        published = epoch_time(hit.get("created_at_i")) or iso_time(hit.get("created_at"))
        if fill.read_before(published):
            continue
        story_title = _text(hit.get("story_title"))
        title = _text(hit.get("title")) or (f"Re: {story_title}" if story_title else "")
        text = _text(hit.get("story_text")) or _text(hit.get("comment_text"))
        title = title or _title_from(text)
        if not title.strip():
            continue
        fill.entries.append(
            FeedEntry(
                title=title,
                link=f"{WEB_ORIGINS['hackernews']}/item?id={object_id}",
                guid=object_id,
                summary=text or _text(hit.get("url")),
                author=_str(hit.get("author")),
                published_at=published,
                language=None,
                reach=_int(hit.get("points")),
            )
        )
    page, pages = _int(document.get("page")), _int(document.get("nbPages"))
    more = page is not None and pages is not None and page + 1 < pages and bool(hits)
    return fill.page(with_params(url, page=page + 1) if more and page is not None else None)


def gdelt_time(value: Any) -> datetime | None:
    """A GDELT time ("20261126T101500Z") as a UTC datetime."""
    if not isinstance(value, str) or len(value) != 16:
        return None
    try:
        return datetime.strptime(value, _GDELT_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_gdelt(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """A GDELT DOC 2.0 reply, by the mode its request asked for: `artlist` (`articles` with
    `url`, `title`, `seendate`, `domain`, `language`, `sourcecountry`; no articles: `{}`) or
    `timelinevolraw` (`timeline[].data[]` with `date` and `value`). GDELT answers an unusable
    query with a line of text: not JSON, a recorded failure."""
    mode = dict(parse_qsl(urlsplit(url).query)).get("mode")
    document = load_json(body, source.name)
    if not isinstance(document, dict):
        raise ParseError(source.name, "not a GDELT DOC reply (not an object)")
    if mode == "timelinevolraw":
        return Page(volumes=_gdelt_timeline(document, source))
    articles = document.get("articles", [])
    if not isinstance(articles, list):
        raise ParseError(source.name, "not a GDELT article list (articles is not a list)")
    fill = PageFill(marker, max_entries)
    oldest: datetime | None = None
    for article in fill.dicts(articles):
        link = _http_url(article.get("url"))
        title = _text(article.get("title"))
        if link is None or not title.strip():
            continue
        seen = gdelt_time(article.get("seendate"))
        if seen is not None:
            oldest = seen if oldest is None else min(oldest, seen)
        if fill.read_before(seen):
            continue
        language = _str(article.get("language"))
        fill.entries.append(
            FeedEntry(
                title=title,
                link=link,
                guid=None,
                summary="",  # the DOC API gives no text: the title is what is matched
                author=_str(article.get("domain")),
                published_at=seen,
                language=GDELT_LANGUAGES.get(language.lower()) if language else None,
            )
        )
    next_url = None
    if len(articles) >= GDELT_MAX_RECORDS and oldest is not None:
        # A full page: older articles are read by ending the next request where this one ends.
        next_url = with_params(url, enddatetime=oldest.strftime("%Y%m%d%H%M%S"))
    return fill.page(next_url)


def _gdelt_timeline(document: dict[str, Any], source: Source) -> list[OutsideVolume]:
    timeline = document.get("timeline", [])
    if not isinstance(timeline, list):
        raise ParseError(source.name, "not a GDELT timeline (timeline is not a list)")
    points: dict[datetime, int] = {}
    for series in timeline:
        data = get_path(series, "data")
        if not isinstance(data, list):
            continue
        for point in data:
            if not isinstance(point, dict):
                continue
            when, value = gdelt_time(point.get("date")), _int(point.get("value"))
            if when is not None and value is not None:
                points[when] = value
        break  # timelinevolraw has one series, the article count
    return [OutsideVolume(when, value) for when, value in sorted(points.items())]


def parse_json_api(
    body: bytes, source: Source, *, url: str, marker: str | None, max_entries: int
) -> Page:
    """Any JSON API read through the source's mapping of dotted paths to mention fields."""
    mapping: JsonMapping | None = source.mapping
    if mapping is None:
        raise ParseError(source.name, "json_api source without a mapping")
    document = load_json(body, source.name)
    items = document if mapping.items == "." else get_path(document, mapping.items)
    if not isinstance(items, list):
        raise ParseError(source.name, f"mapping.items {mapping.items!r} is not a list here")
    fill = PageFill(marker, max_entries)
    for item in items:
        if len(fill.entries) >= max_entries:
            break

        def read(path: str | None, item: Any = item) -> Any:
            return None if path is None else get_path(item, path)

        link = _http_url(read(mapping.url), url)
        guid = _id(read(mapping.id))
        summary = _text(read(mapping.summary))
        title = _text(read(mapping.title)) or _title_from(summary)
        if (link is None and guid is None) or not title.strip():
            continue
        raw_time = read(mapping.published_at)
        published = iso_time(raw_time) or epoch_time(raw_time)
        if fill.read_before(published):
            continue
        fill.entries.append(
            FeedEntry(
                title=title,
                link=link,
                guid=guid,
                summary=summary,
                author=_str(read(mapping.author)),
                published_at=published,
                language=None,
                reach=_int(read(mapping.reach), lenient=True),
            )
        )
    return fill.page(_http_url(get_path(document, mapping.next), url) if mapping.next else None)


def parse_document(
    source: Source,
    body: bytes,
    *,
    url: str,
    marker: str | None = None,
    max_entries: int = 2000,
    headers: Mapping[str, str] | None = None,
) -> Page:
    """Parse one response of an API source by its kind.

    Raises:
        ParseError: not JSON, or not the document the kind expects.
    """
    kind = source.kind
    if kind == "news_search":
        return parse_news_search(
            body, source, url=url, headers=headers or {}, max_entries=max_entries
        )
    parsers = {
        "jsonfeed": parse_jsonfeed,
        "reddit": parse_reddit,
        "mastodon": parse_mastodon,
        "bluesky": parse_bluesky,
        "hackernews": parse_hackernews,
        "json_api": parse_json_api,
        "gdelt": parse_gdelt,
    }
    parser = parsers.get(kind)
    if parser is None:
        raise ParseError(source.name, f"kind {kind!r} has no parser here")
    return parser(body, source, url=url, marker=marker, max_entries=max_entries)


# --- the page loop -----------------------------------------------------------------------------


def fetch_api_source(
    source: Source,
    state: SourceState | None,
    *,
    collection: Collection,
    fetch: Fetcher = fetch_source,
) -> FetchResult:
    """Read an API source: every planned search, page after page, until the last cycle's marker,
    the end of the results, `max_pages`, or the source's share of bytes, entries and time.

    Never raises for a source problem. The result carries the entries and the new marker; when a
    page fails after others were read, the result is ok with what was read, the failure in
    `error`, and the old marker (so the next cycle reads that stretch again).
    """
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    marker = state.marker if state is not None else None

    def failed(reason: str, http_status: int | None = None) -> FetchResult:
        return failed_fetch(source, reason, started_at=started_at, t0=t0, http_status=http_status)

    try:
        chains = plan_requests(source, state)
    except ValueError as err:
        return failed(str(err))
    entries: list[FeedEntry] = []
    volumes: list[OutsideVolume] = []
    newest = marker
    pages = 0
    bytes_read = 0
    problems: list[str] = []
    first: FetchResult | None = None  # the first page read: its status and validators
    first_failure: FetchResult | None = None
    unreadable: FetchResult | None = None  # the first answer that could not be parsed
    last_url: str | None = None
    visited: set[str] = set()
    exhausted = False
    hold_marker = False  # a chain of entries failed: read that stretch again next cycle
    for start in chains:
        if problems and source.kind == "gdelt":
            break  # GDELT's timeline is read only with its articles: a failed list fails it
        problems_before = len(problems)
        url: str | None = start
        chain_pages = 0
        while url is not None and chain_pages < collection.max_pages and url not in visited:
            budget_bytes = collection.max_bytes - bytes_read
            budget_s = collection.deadline_s - (time.monotonic() - t0)
            budget_entries = collection.max_entries - len(entries)
            if budget_bytes <= 0 or budget_s <= 0 or budget_entries <= 0:
                exhausted = True
                break
            visited.add(url)
            conditional = state if source.kind in CONDITIONAL_KINDS and pages == 0 else None
            result = fetch(
                source.model_copy(update={"url": url}),
                conditional,
                collection=collection.model_copy(
                    update={"max_bytes": budget_bytes, "deadline_s": budget_s}
                ),
            )
            if result.status == "not_modified" and pages == 0 and len(chains) == 1:
                return result  # an unchanged document, as for RSS
            if result.status != "ok" or result.body is None:
                problems.append(result.error or result.status)
                first_failure = first_failure or result
                exhausted = result.status == "deferred"  # the fetch step's time is up
                break
            try:
                page = parse_document(
                    source,
                    result.body,
                    url=result.final_url or url,
                    marker=marker,
                    max_entries=budget_entries,
                    headers=result.headers,
                )
            except ParseError as err:
                problems.append(err.reason)
                unreadable = unreadable or result
                break
            if pages == 0:
                first = result
            pages += 1
            chain_pages += 1
            bytes_read += len(result.body)
            last_url = url
            entries.extend(page.entries)
            volumes.extend(page.volumes)
            newest = newer(newest, page.newest)
            next_url = None if page.reached else page.next_url
            if next_url is not None and url_origin(next_url) != url_origin(source.url):
                problems.append("next page on another server (refused)")
                next_url = None
            url = next_url
        # GDELT's timeline (its last chain) carries no entries: its failure holds nothing back.
        timeline = source.kind == "gdelt" and start == chains[-1]
        hold_marker = hold_marker or (len(problems) > problems_before and not timeline)
        if exhausted:
            break
    if first is None:
        if first_failure is not None and first_failure.status == "deferred":
            return replace(
                first_failure,
                url=source.url,
                started_at=started_at,
                duration_s=time.monotonic() - t0,
            )
        if first_failure is not None and first_failure.status == "error":
            return failed(first_failure.error or "failed", first_failure.http_status)
        # The server answered (its status is kept, as for an RSS feed that is not one).
        status = unreadable.http_status if unreadable is not None else None
        return failed("; ".join(problems) or "nothing to fetch", status)
    if hold_marker:
        newest = marker  # read this stretch again next cycle
    elif newest is not None and source.kind in TIMESTAMP_MARKER_KINDS and newest.isdigit():
        newest = min(newest, str(math.floor(time.time())), key=_order)
    conditional_kind = source.kind in CONDITIONAL_KINDS
    return FetchResult(
        source=source.name,
        url=source.url,
        status="ok",
        started_at=started_at,
        duration_s=time.monotonic() - t0,
        http_status=first.http_status,
        body=None,
        headers={},
        final_url=last_url,
        etag=first.etag if conditional_kind else None,
        last_modified=first.last_modified if conditional_kind else None,
        error="; ".join(problems)[:500] if problems else None,
        entries=tuple(entries),
        marker=newest,
        pages=pages,
        bytes_read=bytes_read,
        volumes=tuple(volumes),
    )
