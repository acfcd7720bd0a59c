"""The quick paths of text cleaning, URL canonicalisation and folding give the answers of the
general code they skip: checked against reference implementations on varied and random input."""

from __future__ import annotations

import html
import random
import re
import sys
import unicodedata
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from tasks.collect.normalise import (
    _BLOCK_TAGS,
    _MAYBE_INVISIBLE,
    _visible,
    canonical_url,
    clean_text,
)
from vigie.query import _LIGATURES, fold


class _Reference(HTMLParser):
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


def reference_clean_text(value: str | None, max_chars: int) -> str:
    """clean_text as it was before its quick paths."""
    if not value:
        return ""
    if "<" in value:
        extractor = _Reference()
        extractor.feed(value)
        extractor.close()
        value = "".join(extractor.parts)
    else:
        value = html.unescape(value)
    value = "".join(_visible(ch) for ch in value)
    value = re.sub(r"\s+", " ", value).strip()
    if len(value) > max_chars:
        value = value[: max_chars - 1].rstrip() + "…"
    return value


CASES = [
    '<p>Un <b>rappel</b> &eacute;tendu &amp; <a href="/x?a=1&amp;b=2">lien</a>.</p><p>Suite</p>',
    '<img src="https://x.example/a.jpg" alt="" width="320" height="180"/><p>Texte</p>',
    "<P CLASS='x'>Majuscules</P><BR>fin",
    "a < b & c > d",
    "<3 les fromages",
    "<!-- commentaire --><p>après</p>",
    "<script>alert('x')</script>visible<style>p{}</style>",
    "<p>tab\tnew\nline\u2028sep\u00adsoft\u200bzero</p>",
    "&am<b></b>p; coupé",
    "<a href='x>y'>quoted</a>",
    "<o:p>office</o:p>",
    "<p>non\u00a0breaking\u202fnarrow « guillemets »</p>",
    "texte &#233; &#xE9; &nbsp; &unknown; &",
    "<p>" + "long " * 1000 + "</p>",
    "</p>fin orpheline",
    "<p>ouverte",
    "<a\nhref='x'\n>multi-ligne</a>",
    "",
    "plain ascii text",
]
PIECES = [
    "<p>",
    "</p>",
    "<br/>",
    "<b>",
    "</b>",
    '<a href="u">',
    "</a>",
    "&amp;",
    "&eacute;",
    "&#233;",
    " ",
    "\t",
    "\n",
    "\u00a0",
    "\u00ad",
    "\u200b",
    "é",
    "’",
    "<",
    ">",
    "&",
    "x",
    "mot",
    "<div>",
    "</div>",
    "<script>",
    "</script>",
    "<!--",
    "-->",
    "<em>",
    "\x00",
    "\x85",
    "\u2028",
    "œ",
]


@pytest.mark.parametrize("value", CASES)
def test_clean_text_matches_the_reference(value: str) -> None:
    for limit in (30, 4000):
        assert clean_text(value, limit) == reference_clean_text(value, limit)


def test_clean_text_matches_the_reference_on_random_fragments() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 25)))
        assert clean_text(value, 60) == reference_clean_text(value, 60), repr(value)


def test_characters_the_quick_check_lets_through_are_all_visible() -> None:
    """Every code point outside `_MAYBE_INVISIBLE` is one `_visible` leaves as it is."""
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if _MAYBE_INVISIBLE.match(ch) is None:
            assert _visible(ch) == ch, hex(code)


def reference_canonical_url(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_")
        and k.lower()
        not in {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid"}
    ]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


@pytest.mark.parametrize(
    "url",
    [
        "https://site00001.example.com/articles/00001-000001",
        "http://a.example",
        " https://a.example/x ",
        "https://a.example/a b/é",
        "https://a.example/x;p",
        "https://a.example/x?",
        "https://a.example/x#",
        "https://a.example/x/../y",
        "https://a.example//double",
        "HTTPS://A.EXAMPLE/X",
        "https://a.example:443/x",
        "https://user@a.example/x",
        "https://a.example/x%20y",
    ],
)
def test_canonical_url_quick_path_matches_the_reference(url: str) -> None:
    assert canonical_url(url) == reference_canonical_url(url)


def reference_fold(text: str) -> str:
    # Folding is idempotent: compatibility forms that decompose to capitals ("ℌ") fold again.
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LIGATURES))
    decomposed = unicodedata.normalize("NFKD", decomposed.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@pytest.mark.parametrize(
    "text",
    ["Cœur Boréale", "ÉTÉ straße", "plain ASCII", "ﬁ ligature ½", "a\u0301e\u0300", "", "İstanbul"],
)
def test_fold_quick_paths_match_the_reference(text: str) -> None:
    assert fold(text) == reference_fold(text)


@pytest.mark.parametrize(
    "text",
    ["Northwind_Foundation 2024: l'ONU", "ℌello Wörld", "a-b c.d", "x\u00ady", "plain"],
)
def test_text_words_quick_path_matches_the_reference(text: str) -> None:
    from vigie.query import text_words

    assert text_words(text) == tuple(re.findall(r"[^\W_]+", reference_fold(text)))
