"""A fast path for well-formed RSS 2.0 / 0.9x, RSS 1.0 (RDF) and Atom 1.0 / 0.3 documents.

feedparser spends about 2 ms of pure-Python work per entry (SAX events, sanitizing, URI
resolution). This module parses the same bytes with the C parser of the standard library
(`xml.etree.ElementTree`, expat) and reproduces feedparser's choices for the fields Vigie keeps
(title, link, guid, summary, author, published time, feed language), so that the mentions
made from either path are the same once `normalise_entries` has cleaned them.

It returns None, and the caller falls back to feedparser, whenever it is not sure to give the
same answer: a document that is not well-formed XML, an encoding feedparser would not use
strictly, a DOCTYPE, `xml:base`, iTunes or Media RSS elements (they feed the title, summary
and author in feedparser), unknown content types, repeated titles or summaries, nested markup
that is not Atom XHTML, or any root that is not a feed. The caller has already refused empty
documents and entity declarations; only bytes are ever parsed.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.mixin import _cp1252
from feedparser.urls import ACCEPTABLE_URI_SCHEMES

from vigie.models import FeedEntry


class _Fallback(Exception):
    """This document needs feedparser."""


# Namespaces as feedparser names them ('' = the core vocabulary of RSS and Atom).
_PREFIXES = {
    "": "",
    "http://backend.userland.com/rss": "",
    "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/": "",
    "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://purl.org/atom/ns#": "",
    "http://www.w3.org/2005/atom": "",
    "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/1999/xhtml": "xhtml",
    "http://search.yahoo.com/mrss": "media",
    "http://search.yahoo.com/mrss/": "media",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
# Documents with these go to feedparser (base URIs, DTDs: rules not reproduced here).
_FALLBACK_MARKERS = (b"xml:base", b"<!DOCTYPE", b"<!doctype")

_TITLE = frozenset({"title", "dc:title"})
_SUMMARY = frozenset({"description", "dc:description", "summary"})
_CONTENT = frozenset({"content", "content:encoded"})
_AUTHOR = frozenset({"author", "dc:creator", "dc:author"})
_PUBLISHED = frozenset({"pubdate", "published", "issued", "dcterms:issued"})
_UPDATED = frozenset({"updated", "modified", "lastbuilddate", "dc:date", "dcterms:modified"})
# Item children that feedparser reads into titles, summaries or authors by rules this module
# does not follow: their documents go to feedparser.
_UNSUPPORTED = frozenset(
    {
        "body",
        "xhtml:body",
        "fullitem",
        "abstract",
        "media:title",
        "media:description",
        "itunes:author",
        "itunes:summary",
        "itunes:name",
        "itunes:email",
    }
)
# Item children whose own children feedparser keeps apart from the item's fields.
_CONTAINERS = frozenset({"author", "dc:creator", "dc:author", "contributor", "source"})
_TEXT_TYPES = frozenset({"text/plain", "text/html", "application/xhtml+xml"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_URIFIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_LINK_ENTITY = re.compile(r"&([A-Za-z0-9_]+);")
_NAMES: dict[str, str | None] = {}
_C1_CONTROLS = re.compile("[\x80-\x9f]")

# The two date shapes nearly every feed uses; anything else goes to feedparser's parser.
_RFC822 = re.compile(
    r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?(\d{1,2})\s+"
    r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-]\d{4}|[a-z]+)"
)
_W3CDTF = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})t(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(z|[+-]\d{2}:\d{2})"
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
# feedparser's RFC 822 zone names (unknown names count as UTC there too).
_ZONES = {
    "ut": 0,
    "gmt": 0,
    "z": 0,
    "adt": -3,
    "ast": -4,
    "at": -4,
    "edt": -4,
    "est": -5,
    "et": -5,
    "cdt": -5,
    "cst": -6,
    "ct": -6,
    "mdt": -6,
    "mst": -7,
    "mt": -7,
    "pdt": -7,
    "pst": -8,
    "pt": -8,
    "a": -1,
    "n": 1,
    "m": -12,
    "y": 12,
    "met": 1,
    "mest": 2,
}


def _name(tag: Any) -> str | None:
    """feedparser's name of an element (`title`, `dc:creator`), None for unknown namespaces."""
    if not isinstance(tag, str):
        return None  # comments and processing instructions
    known = _NAMES.get(tag, "")
    if known != "":
        return known
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        uri = uri.lower()
        if "backend.userland.com/rss" in uri:
            uri = "http://backend.userland.com/rss"
        prefix = _PREFIXES.get(uri)
        name = None if prefix is None else (f"{prefix}:" if prefix else "") + local.lower()
    else:
        name = tag.lower()
    if len(_NAMES) < 5000:  # element names come from documents: keep the memo bounded
        _NAMES[tag] = name
    return name


def _fix(text: str) -> str:
    """feedparser's last touches on every text value: UTF-8 read as Latin-1, cp1252 controls."""
    if text.isascii():
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    if _C1_CONTROLS.search(text) is None:
        return text
    return text.translate(_cp1252)


@lru_cache(maxsize=256)  # a guid is often its item's link: resolved once
def _urljoin(base: str, uri: str) -> str:
    """feedparser's URI resolution (`feedparser.urls._urljoin`)."""
    uri = _URIFIXER.sub(r"\1\3", uri)
    scheme = _SCHEME.match(uri)
    if scheme is not None and not base.lower().startswith(scheme.group(1).lower() + ":"):
        return uri  # what urljoin answers for an absolute URI of another scheme, quicker
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def _content_type(element: ET.Element, default: str) -> str:
    value = element.get("type", default).lower()
    if value in ("text", "plain"):
        return "text/plain"
    if value == "html":
        return "text/html"
    if value == "xhtml":
        return "application/xhtml+xml"
    return value


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def _xhtml(element: ET.Element) -> str:
    """The inner markup of inline XHTML, as feedparser rebuilds it (text escaped)."""
    parts = [_escape(element.text or "")]
    for child in element:
        if isinstance(child.tag, str):
            tag = child.tag.rpartition("}")[2].lower()
            parts.append(f"<{tag}>{_xhtml(child)}</{tag}>")
        parts.append(_escape(child.tail or ""))
    return "".join(parts)


def _text(element: ET.Element, default_type: str) -> tuple[str, str]:
    """The value of a text construct and its content type."""
    kind = _content_type(element, default_type)
    if kind not in _TEXT_TYPES or element.get("mode") not in (None, "escaped"):
        raise _Fallback  # base64, inline XML of another kind
    if len(element):
        if kind != "application/xhtml+xml":
            raise _Fallback  # markup that is not escaped: feedparser switches modes midway
        value = _xhtml(element)
    elif kind == "application/xhtml+xml":
        value = _escape(element.text or "")
    else:
        value = element.text or ""
    return _fix(value.strip()), kind


def parse_date(value: str) -> datetime | None:
    """A feed date as feedparser reads it, in UTC (None when it cannot be read)."""
    lowered = value.lower()
    try:
        if (m := _W3CDTF.fullmatch(lowered)) is not None:
            year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
            zone = m.group(7)
            offset = timedelta(0)
            if zone != "z":
                sign = -1 if zone[0] == "-" else 1
                offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC) - offset
        if (m := _RFC822.fullmatch(lowered)) is not None:
            r_day, r_month, r_year, r_hour, r_minute, r_second, r_zone = m.groups()
            if r_zone[0] in "+-":
                sign = -1 if r_zone[0] == "-" else 1
                offset = sign * timedelta(hours=int(r_zone[1:3]), minutes=int(r_zone[3:5]))
            else:
                offset = timedelta(hours=_ZONES.get(r_zone, 0))
            stamp = datetime(
                int(r_year),
                _MONTHS[r_month],
                int(r_day),
                int(r_hour),
                int(r_minute),
                int(r_second or 0),
                tzinfo=UTC,
            )
            return stamp - offset
    except (ValueError, OverflowError):
        pass  # feedparser may still read it another way
    parsed = _parse_date(value)
    if parsed is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in parsed[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _author(element: ET.Element) -> str:
    """An author element's value: `name (email)` from Atom children, else its own text."""
    name: str | None = None
    email: str | None = None
    detail = False
    for child in element:
        child_name = _name(child.tag)
        if child_name in ("name", "email", "uri", "url", "homepage"):
            detail = True
            if child_name == "name":
                name = (child.text or "").strip()
            elif child_name == "email":
                email = (child.text or "").strip()
    own = _fix("".join([element.text or "", *(c.tail or "" for c in element)]).strip())
    if detail:
        if name and email:
            return f"{name} ({email})"
        if name:
            return name
        if email:
            return email
    return own


class _Entry:
    __slots__ = (
        "author",
        "content",
        "guid",
        "has_content",
        "link",
        "published",
        "summary",
        "title",
        "updated",
    )

    def __init__(self) -> None:
        self.title: str | None = None
        self.link: str | None = None
        self.guid: str | None = None
        self.summary: str | None = None
        self.content: str | None = None
        self.has_content = False
        self.author: str | None = None
        self.published: str | None = None
        self.updated: str | None = None


def _entry(item: ET.Element, base: str, language: str | None) -> FeedEntry:
    if "lastmod" in item.attrib or "href" in item.attrib or "base" in item.attrib:
        raise _Fallback  # CDF attributes, a base URI
    entry = _Entry()
    about = item.get(_RDF_ABOUT)
    if about:
        entry.guid = about
    titles = summaries = 0
    for child in item:
        name = _name(child.tag)
        if name is None:
            continue
        if len(child) and name not in _CONTAINERS and name not in _TITLE | _SUMMARY | _CONTENT:
            raise _Fallback  # nested elements feedparser might read into the entry
        if name in _TITLE:
            titles += 1
            if titles > 1:
                raise _Fallback
            entry.title, _ = _text(child, "text/plain")
        elif name == "link":
            # feedparser prefers url, then uri, then href; an empty one still counts as href.
            href = child.get("url", child.get("uri", child.get("href")))
            if not href:
                href = child.get("href")
            if href is not None:
                rel = child.get("rel", "alternate").lower()
                kind = child.get("type", "application/atom+xml" if rel == "self" else "text/html")
                if rel == "alternate" and _content_type(child, kind) in _HTML_TYPES:
                    entry.link = _urljoin(base, href)
            else:
                value = (child.text or "").strip()
                if value:
                    value = _urljoin(base, value)
                value = _fix(value).replace("&amp;", "&")
                entry.link = _LINK_ENTITY.sub(r"&\1", value)
        elif name in ("guid", "id"):
            is_link = child.get("isPermaLink", child.get("ispermalink", "true")) == "true"
            value = (child.text or "").strip()
            if value and is_link:
                value = _urljoin(base, value)
            value = _fix(value)
            entry.guid = value
            if is_link and entry.link is None:
                entry.link = value
        elif name in _SUMMARY:
            summaries += 1
            if summaries > 1:
                raise _Fallback
            value, _ = _text(child, "text/plain" if name == "summary" else "text/html")
            entry.summary = value
        elif name in _CONTENT:
            value, kind = _text(child, "text/plain" if name == "content" else "text/html")
            if kind not in _TEXT_TYPES:
                raise _Fallback
            entry.has_content = True
            if entry.content is None:
                entry.content = value
            if entry.summary is None:
                entry.summary = value
        elif name in _AUTHOR:
            entry.author = _author(child)
        elif name in _PUBLISHED:
            entry.published = _fix((child.text or "").strip())
        elif name in _UPDATED:
            entry.updated = _fix((child.text or "").strip())
        elif name in _UNSUPPORTED:
            raise _Fallback
    published = parse_date(entry.published) if entry.published else None
    if published is None and entry.updated:
        published = parse_date(entry.updated)
    return FeedEntry(
        title=entry.title or "",
        link=entry.link,
        guid=entry.guid,
        summary=entry.summary or entry.content or "",
        author=entry.author,
        published_at=published,
        language=language,
    )


def parse_fast(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    max_entries: int,
    decoded: tuple[bytes, Mapping[str, Any]] | None = None,
) -> tuple[list[FeedEntry], str | None] | None:
    """Entries and language of a well-formed feed, or None when feedparser must decide.

    `headers` are the response's, lower-case keys; `url` is the base of relative links (the
    response's Content-Location, else where the document came from), as feedparser takes it.
    `decoded` is what `feedparser.encodings.convert_to_utf8` made of `body`, when the caller
    has it already (`tasks.collect.xmlbounds.decode_document`).
    """
    if decoded is None:
        result: dict[str, Any] = {}
        try:
            decoded = convert_to_utf8(dict(headers), body, result), result
        except Exception:
            return None
    data, found = decoded
    if not found.get("encoding"):
        return None
    if any(marker in data for marker in _FALLBACK_MARKERS):  # decoded: UTF-16 hides nothing
        return None
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, RecursionError):
        return None
    try:
        return _parse_root(
            root,
            url=url,
            header_language=headers.get("content-language"),
            max_entries=max_entries,
        )
    except (_Fallback, RecursionError):
        return None


def _parse_root(
    root: ET.Element, *, url: str, header_language: str | None, max_entries: int
) -> tuple[list[FeedEntry], str | None]:
    root_name = _name(root.tag)
    if root_name not in ("rss", "rdf:rdf", "feed") or "base" in root.attrib:
        raise _Fallback  # an HTML page, OPML, an unknown vocabulary: feedparser decides
    # The feed's language: the root's xml:lang (not for RDF, as feedparser's strict parser
    # reads it), else the Content-Language header; a <language> element overrides both.
    language: str | None = None
    lang = root.get(_XML_LANG, root.get("lang"))
    if lang is None:
        lang = header_language
    if lang and root_name != "rdf:rdf":
        language = lang.replace("_", "-")
    items: list[ET.Element] = []
    for child in root:
        name = _name(child.tag)
        if name == "channel":
            if "base" in child.attrib:
                raise _Fallback
            for grandchild in child:
                grand_name = _name(grandchild.tag)
                if grand_name in ("item", "entry"):
                    items.append(grandchild)
                elif grand_name in ("language", "dc:language"):
                    language = _fix((grandchild.text or "").strip())
        elif name in ("item", "entry"):
            items.append(child)
        elif name in ("language", "dc:language"):
            language = _fix((child.text or "").strip())
    # Entries anywhere else (nested in an extension) would be entries for feedparser too.
    ns = root.tag[: root.tag.find("}") + 1]
    tags = {item.tag for item in items} | {"item", "entry", f"{ns}item", f"{ns}entry"}
    if sum(1 for tag in tags for _ in root.iter(tag)) != len(items):
        raise _Fallback
    base = _urljoin(url, url)
    if base.strip().split(":", 1)[0] not in ACCEPTABLE_URI_SCHEMES:
        base = url
    return [_entry(item, base, language) for item in items[: max(max_entries, 0)]], language
