"""The fast feed parser (`tasks.collect.fastfeed`) against feedparser: same mentions once
normalised.

Each fixture is parsed twice by `parse_feed`, with the fast path and with feedparser only; the
entries, normalised by `normalise_entries`, must be equal field by field (titles and summaries
cleaned). The fixtures cover RSS 2.0, 0.91, 1.0 (RDF), Atom 1.0 and 0.3, dates in several
formats, HTML and XHTML text, CDATA, entities, missing fields, Latin-1. The hostile-input
guarantees hold on both paths.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.collect.fastfeed import parse_date, parse_fast
from tasks.collect.normalise import normalise_entries, parse_feed
from vigie.errors import ParseError
from vigie.models import FeedEntry
from vigie.settings import Source

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
VARIED = sorted((FEEDS / "equivalence").glob("*.xml"))
URL = "http://127.0.0.1/feeds/x.xml"
HEADERS = {"content-type": "application/xml"}
SOURCE = Source(name="test", url=URL)
NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


def both(body: bytes, headers: dict[str, str] | None = None) -> tuple[object, object]:
    kwargs = {"source": "test", "url": URL, "headers": headers or HEADERS, "max_entries": 100}
    fast_entries, fast_lang = parse_feed(body, fast=True, **kwargs)  # type: ignore[arg-type]
    slow_entries, slow_lang = parse_feed(body, fast=False, **kwargs)  # type: ignore[arg-type]
    return (
        (fast_lang, normalise_entries(fast_entries, source=SOURCE, collected_at=NOW)),
        (slow_lang, normalise_entries(slow_entries, source=SOURCE, collected_at=NOW)),
    )


@pytest.mark.parametrize(
    "path",
    [*VARIED, FEEDS / "rss2.xml", FEEDS / "atom.xml", FEEDS / "rdf.xml"],
    ids=lambda p: p.name,
)
def test_fast_path_gives_the_same_mentions_as_feedparser(path: Path) -> None:
    body = path.read_bytes()
    assert parse_fast(body, url=URL, headers=HEADERS, max_entries=100) is not None, (
        "this fixture must take the fast path"
    )
    fast, slow = both(body)
    assert fast == slow


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "text/xml"},
        {"content-type": "application/rss+xml; charset=utf-8"},
        {"content-type": "text/xml; charset=iso-8859-1"},
        {"content-type": "application/xml", "content-language": "fr-CA"},
        {"content-type": "application/xml", "content-location": "https://elsewhere.example/f/"},
    ],
    ids=["none", "text-xml", "charset-utf8", "charset-latin1", "content-language", "location"],
)
def test_response_headers_are_read_the_same_way(headers: dict[str, str]) -> None:
    for path in VARIED:
        fast, slow = both(path.read_bytes(), headers)
        assert fast == slow, path.name


def test_the_fast_path_keeps_the_raw_fields_feedparser_gives() -> None:
    entries, language = parse_feed(
        (FEEDS / "equivalence" / "rss2_varied.xml").read_bytes(),
        source="test",
        url=URL,
        headers=HEADERS,
        max_entries=100,
    )
    assert language == "fr-FR"
    first, second, third = entries[:3]
    assert first.guid == "qdn-1"
    assert first.link == "https://quotidien.example/a/1?utm_source=rss&id=3"
    assert first.published_at == datetime(2024, 5, 14, 8, 30, tzinfo=UTC)
    assert second.link == "http://127.0.0.1/a/2"  # resolved against the feed's URL
    assert second.published_at is None
    assert third.link == "https://quotidien.example/a/3"  # the permalink guid
    assert "Contenu complet" in third.summary


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 14 May 2024 10:30:00 +0200",
        "Tuesday, 14 May 2024 10:30:00 +0200",
        "14 May 2024 10:30 GMT",
        "Tue, 14 May 2024 10:30:00 EST",
        "Tue, 14 May 2024 10:30:00 CEST",
        "Tue, 14 May 2024 10:30:00 -0000",
        "Tue, 14 May 2024 10:30:00 +0530",
        "Tue, 14 May 24 10:30:00 +0200",
        "Tue,14 May 2024 10:30:00 +0200",
        "Tue, 14 May 2024 10:30:00 +0200 (CEST)",
        "Tue, 31 Feb 2024 10:30:00 +0200",
        "Tue, 14 May 2024 25:30:00 +0200",
        "2024-05-14T10:30:00Z",
        "2024-05-14T10:30:00.5+02:00",
        "2024-05-14T10:30:00-04:30",
        "2024-05-14T10:30:00+0200",
        "2024-05-14T10:30Z",
        "2024-05-14 10:30:00",
        "2024-05-14",
        "2024-02-30T10:00:00Z",
        "20240514T103000Z",
        "yesterday",
        "",
    ],
)
def test_dates_are_read_as_feedparser_reads_them(value: str) -> None:
    from feedparser.datetimes import _parse_date

    expected = _parse_date(value)
    got = parse_date(value)
    if expected is None:
        assert got is None
    else:
        assert got == datetime(*expected[:6], tzinfo=UTC)


def test_the_fast_path_keeps_no_script_content() -> None:
    """Scripts in summaries (CDATA, escaped HTML, XHTML) never reach a mention's text."""
    for name in ("rss2_varied.xml", "atom_varied.xml"):
        body = (FEEDS / "equivalence" / name).read_bytes()
        quick = parse_fast(body, url=URL, headers=HEADERS, max_entries=100)
        assert quick is not None
        mentions = normalise_entries(quick[0], source=SOURCE, collected_at=NOW)
        for mention in mentions:
            for text in (mention.title, mention.summary):
                assert "alert" not in text and "steal" not in text and "bad()" not in text
                assert "<" not in text


@pytest.mark.parametrize(
    ("name", "reason_part"),
    [
        pytest.param("html_page.html", "HTML page", id="html-page"),
        pytest.param("garbage.txt", "not a feed", id="garbage"),
        pytest.param("empty.xml", "empty document", id="blank-document"),
        pytest.param("entities.xml", "entities", id="entity-declarations"),
    ],
)
def test_hostile_documents_fail_the_same_way_on_both_paths(name: str, reason_part: str) -> None:
    body = (FEEDS / name).read_bytes()
    for fast in (True, False):
        with pytest.raises(ParseError) as caught:
            parse_feed(body, source="t", url=URL, headers={}, max_entries=10, fast=fast)
        assert reason_part in caught.value.reason


def test_an_xhtml_page_is_not_a_feed_on_the_fast_path() -> None:
    page = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
    assert parse_fast(page, url=URL, headers={}, max_entries=10) is None
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(page, source="t", url=URL, headers={}, max_entries=10)


def test_broken_documents_fall_back_to_feedparser_and_recover() -> None:
    body = (FEEDS / "broken.xml").read_bytes()
    assert parse_fast(body, url=URL, headers={}, max_entries=10) is None
    entries, _ = parse_feed(body, source="t", url=URL, headers={}, max_entries=10)
    assert [e.title for e in entries] == [
        "Fromages & rappels : qui est touché ?",
        "Recette de poutine",
    ]


def test_truncated_document_is_recovered_or_refused_never_raised_otherwise() -> None:
    body = (FEEDS / "rss2.xml").read_bytes()
    for cut in (50, len(body) // 2, len(body) - 20):
        try:
            entries, _ = parse_feed(body[:cut], source="t", url=URL, headers={}, max_entries=10)
        except ParseError:
            continue
        assert all(isinstance(e, FeedEntry) for e in entries)


def test_entries_are_capped_per_document_on_the_fast_path() -> None:
    items = "".join(
        f"<item><title>n{i}</title><link>https://x.example/{i}</link></item>" for i in range(50)
    )
    body = f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
    quick = parse_fast(body, url=URL, headers={}, max_entries=7)
    assert quick is not None and [e.title for e in quick[0]] == [f"n{i}" for i in range(7)]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><item>'
            b"<media:title>M</media:title><link>https://x.example/1</link></item></channel></rss>",
            id="media-title",
        ),
        pytest.param(
            b'<rss version="2.0"><channel><item><title>a</title><title>b</title></item>'
            b"</channel></rss>",
            id="two-titles",
        ),
        pytest.param(
            b'<rss version="2.0"><channel xml:base="http://b.example/"><item><link>x</link>'
            b"</item></channel></rss>",
            id="xml-base",
        ),
        pytest.param(
            b'<rss version="2.0"><channel><item><description>a <b>raw</b> tag</description>'
            b"</item></channel></rss>",
            id="unescaped-markup",
        ),
        pytest.param(
            b'<rss version="2.0"><channel><ext><item><title>deep</title></item></ext>'
            b"</channel></rss>",
            id="nested-item",
        ),
    ],
)
def test_what_the_fast_path_does_not_model_goes_to_feedparser(body: bytes) -> None:
    assert parse_fast(body, url=URL, headers={}, max_entries=10) is None
    fast, slow = both(body)
    assert fast == slow
