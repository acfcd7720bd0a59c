"""Bounds on an XML document before a parser sees it: no entity declarations, in whatever encoding
the parsers will read it; no elements nested deeper than `MAX_DEPTH`; and no more than
`MAX_FALLBACK_ELEMENTS` elements for feedparser, whose pure-Python work grows with each.

Nothing here builds the document: regular expressions, counts and byte translations, a megabyte
at a time, so time is linear (about 25 ms of CPU a megabyte of an ordinary feed) and memory stays
a few copies of the document.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import Any

from feedparser.encodings import convert_to_utf8

from vigie.errors import ParseError

# libxml2's own default bound: no feed nests this deep (an Atom entry in XHTML, a dozen levels).
MAX_DEPTH = 256
# Elements a document may have to go to feedparser (about 0.1 ms of work each, on 2 cores):
# 2,000 entries of 50 elements. The C parser of the fast path takes any document under max_bytes.
MAX_FALLBACK_ELEMENTS = 100_000
ENTITIES_REFUSED = "document declares XML entities (refused: expansion attack)"

_ENTITY = "<!ENTITY"
# "<!ENTITY" in any case, in the encodings a document may come in (UTF-8 and every
# ASCII-compatible one, UTF-16 and UTF-32 of either byte order), whatever the BOM says.
_ENTITY_IN_BYTES = [
    re.compile(re.escape(_ENTITY.encode(encoding)), re.IGNORECASE)
    for encoding in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
]
# Tags of HTML's void elements, which a lenient parser never nests (a broken feed's <br>).
_VOID_TAG = re.compile(
    rb"</?(?:area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)(?![\w:.-])"
    rb"[^<>]*>",
    re.IGNORECASE,
)
# An empty-element tag (`<a href="x>y"/>`): no depth. Attribute values cannot hold "<".
_EMPTY_TAG = re.compile(rb"""<[^\s<>/!?][^<>"']*(?:(?:"[^"<]*"|'[^'<]*')[^<>"']*)*/>""")
_START, _END = b"\x01", b"\x02"
_NOT_MARKS = bytes(b for b in range(256) if b not in (1, 2))
_STEPS = bytes.maketrans(_START + _END, b"\x01\xff")  # +1 and -1 as signed bytes
_CHUNK = 1 << 20  # markup is counted a megabyte at a time: memory stays a few of them
# Where each construct that is not markup ends: comments, CDATA, processing instructions,
# declarations. One left open runs to the end of the document, as for a parser.
_CLOSERS = ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>"), (b"<!", b">"))


def _markup(data: bytes) -> Iterator[bytes]:
    """`data` without its comments, CDATA sections, processing instructions and declarations,
    in pieces of about `_CHUNK` bytes, each cut just before a "<"."""
    position, size = 0, len(data)
    next_bang = next_pi = -1
    while position < size:
        if next_bang < position:
            next_bang = data.find(b"<!", position)
            next_bang = size if next_bang < 0 else next_bang
        if next_pi < position:
            next_pi = data.find(b"<?", position)
            next_pi = size if next_pi < 0 else next_pi
        start = min(next_bang, next_pi)
        while position < start:  # markup up to the construct, a chunk at a time
            cut = data.find(b"<", position + _CHUNK, start) if start - position > _CHUNK else -1
            cut = start if cut < 0 else cut
            yield data[position:cut]
            position = cut
        if start >= size:
            return
        opener, closer = next(pair for pair in _CLOSERS if data.startswith(pair[0], start))
        end = data.find(closer, start + len(opener))
        position = size if end < 0 else end + len(closer)


def nesting_depth(data: bytes, *, void_nests: bool = False) -> int:
    """How deep elements with content nest in `data` (UTF-8 or ASCII-compatible; an empty
    element adds no level): exact for well-formed XML, HTML's void elements (<br>, <img>)
    aside; more than the truth when other end tags are missing (a broken feed's HTML).
    Linear in time, memory a few megabytes.
    With `void_nests`, void elements count like the others: quicker, and never less."""
    depth = peak = 0
    for piece in _markup(data):
        piece = _EMPTY_TAG.sub(b"", piece.translate(None, _START + _END))
        if not void_nests:
            piece = _VOID_TAG.sub(b"", piece)
        marks = piece.replace(b"</", _END).replace(b"<", _START).translate(None, _NOT_MARKS)
        steps = array("b", marks.translate(_STEPS))
        peak = max(peak, max(accumulate(steps, initial=depth)))
        depth += sum(steps)
    return peak


def decode_document(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, dict[str, Any]]:
    """The document as feedparser decodes it for both parsers (UTF-8 bytes, its declaration
    rewritten), and what it found (`encoding`); `body` itself when it cannot."""
    found: dict[str, Any] = {}
    try:
        return convert_to_utf8(dict(headers), body, found), found
    except Exception:  # feedparser's detection on hostile bytes: parse them as they are
        return body, {}


def screen_document(body: bytes, decoded: bytes, *, source: str) -> None:
    """Refuse what no parser should be given; `decoded` is `decode_document`'s bytes.

    Raises:
        ParseError: entity declarations (looked for in the bytes, in UTF-16 and UTF-32, and
            after decoding), or elements nested deeper than MAX_DEPTH.
    """
    # UTF-16 and UTF-32 spell every ASCII character with a NUL byte: without one, no need.
    patterns = _ENTITY_IN_BYTES if b"\x00" in body else _ENTITY_IN_BYTES[:1]
    if any(pattern.search(body) for pattern in patterns) or (
        decoded is not body and _ENTITY_IN_BYTES[0].search(decoded)
    ):
        raise ParseError(source, ENTITIES_REFUSED)
    # The quick count first: only a document it finds deep is counted again, its <br> aside.
    if nesting_depth(decoded, void_nests=True) > MAX_DEPTH and nesting_depth(decoded) > MAX_DEPTH:
        raise ParseError(
            source, f"elements nested deeper than {MAX_DEPTH} levels (refused: parser bomb)"
        )


def element_count(decoded: bytes) -> int:
    """Start tags in the document, at most (comments and CDATA may hold some)."""
    return decoded.count(b"<") - decoded.count(b"</") - decoded.count(b"<!") - decoded.count(b"<?")


def check_fallback_work(decoded: bytes, *, source: str) -> None:
    """Raises ParseError when feedparser would work through more than MAX_FALLBACK_ELEMENTS."""
    elements = element_count(decoded)
    if elements > MAX_FALLBACK_ELEMENTS:
        raise ParseError(
            source,
            f"too many elements for the lenient parser ({elements:,}, at most "
            f"{MAX_FALLBACK_ELEMENTS:,}): refused",
        )
