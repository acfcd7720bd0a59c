"""Golden-file tests of `tasks.collect.fetch.parse_feed` on the documents in tests/fixtures/feeds/.

Each valid feed `<name>.<ext>` has a `<name>.expected.json` next to it: the language and the
entries (title, link, guid, summary, author, published_at as an ISO UTC string or null).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tasks.collect.normalise import parse_feed
from vigie.errors import ParseError

if TYPE_CHECKING:
    from vigie.models import FeedEntry

FEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def parse_fixture(name: str, *, max_entries: int = 100) -> tuple[list[FeedEntry], str | None]:
    path = FEEDS / name
    return parse_feed(
        path.read_bytes(),
        source="test",
        url=f"http://127.0.0.1/feeds/{name}",
        headers={"content-type": CONTENT_TYPES[path.suffix]},
        max_entries=max_entries,
    )


def as_json(entry: FeedEntry) -> dict[str, Any]:
    published = entry.published_at
    return {
        "title": entry.title,
        "link": entry.link,
        "guid": entry.guid,
        "summary": entry.summary,
        "author": entry.author,
        "published_at": (
            published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if published else None
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("rss2.xml", id="rss2"),
        pytest.param("atom.xml", id="atom"),
        pytest.param("rdf.xml", id="rss1-rdf"),
        pytest.param("broken.xml", id="broken-but-recoverable"),
    ],
)
def test_parse_feed_matches_the_golden_file(name: str) -> None:
    expected = json.loads((FEEDS / f"{Path(name).stem}.expected.json").read_text(encoding="utf-8"))
    entries, language = parse_fixture(name)
    assert {"language": language, "entries": [as_json(e) for e in entries]} == expected


def test_every_entry_carries_the_feed_language() -> None:
    entries, language = parse_fixture("rss2.xml")
    assert language == "fr-CA"
    assert {e.language for e in entries} == {"fr-CA"}


def test_published_times_are_timezone_aware_utc() -> None:
    entries, _ = parse_fixture("rss2.xml")
    first = entries[0]
    # "Tue, 14 May 2024 10:30:00 +0200" is 08:30 UTC.
    assert first.published_at == datetime(2024, 5, 14, 8, 30, tzinfo=UTC)
    assert first.published_at is not None and first.published_at.utcoffset() is not None


def test_a_relative_link_is_resolved_against_the_feed_url() -> None:
    entries, _ = parse_fixture("rss2.xml")
    assert entries[1].link == "http://127.0.0.1/2024/05/cooperative-repond"


def test_an_atom_entry_without_published_uses_updated() -> None:
    entries, _ = parse_fixture("atom.xml")
    assert entries[1].published_at == datetime(2024, 5, 14, 14, 0, tzinfo=UTC)


def test_an_atom_entry_with_published_prefers_it_to_updated() -> None:
    entries, _ = parse_fixture("atom.xml")
    # published 09:15-04:00 (13:15Z), updated 09:20-04:00 (13:20Z)
    assert entries[0].published_at == datetime(2024, 5, 14, 13, 15, tzinfo=UTC)


def test_an_atom_entry_without_summary_takes_its_content() -> None:
    entries, _ = parse_fixture("atom.xml")
    assert "Des orages sont attendus" in entries[1].summary


def test_a_bare_ampersand_is_recovered_in_a_broken_feed() -> None:
    entries, _ = parse_fixture("broken.xml")
    assert entries[0].title == "Fromages & rappels : qui est touché ?"


@pytest.mark.parametrize(
    ("name", "reason_part"),
    [
        pytest.param("html_page.html", "HTML page", id="html-page"),
        pytest.param("garbage.txt", "not a feed", id="garbage"),
        pytest.param("empty.xml", "empty document", id="blank-document"),
        pytest.param("entities.xml", "entities", id="entity-declarations"),
    ],
)
def test_unusable_documents_raise_parse_error_with_a_reason(name: str, reason_part: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_fixture(name)
    assert reason_part in caught.value.reason
    assert caught.value.source == "test"


@pytest.mark.parametrize(
    "body",
    [pytest.param(b"", id="zero-bytes"), pytest.param(b" \r\n\t ", id="whitespace")],
)
def test_an_empty_body_is_an_empty_document(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse_feed(body, source="test", url="http://127.0.0.1/feeds/x", headers={}, max_entries=10)


def test_entity_declarations_are_refused_whatever_their_case() -> None:
    body = (FEEDS / "entities.xml").read_bytes().replace(b"<!ENTITY", b"<!entity")
    with pytest.raises(ParseError, match="entities"):
        parse_feed(body, source="test", url="http://127.0.0.1/feeds/x", headers={}, max_entries=10)


@pytest.mark.parametrize("max_entries", [1, 2])
def test_max_entries_caps_the_entries(max_entries: int) -> None:
    entries, _ = parse_fixture("rss2.xml", max_entries=max_entries)
    assert [e.guid for e in entries] == ["qdn-2024-0001", "qdn-2024-0002"][:max_entries]


def test_max_entries_above_the_count_returns_every_entry() -> None:
    entries, _ = parse_fixture("rss2.xml", max_entries=1000)
    assert len(entries) == 3


@pytest.mark.parametrize(
    "doctype",
    [
        pytest.param('<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{path}">]>', id="external-entity"),
        pytest.param('<!DOCTYPE rss SYSTEM "{path}">', id="external-dtd"),
        pytest.param('<!DOCTYPE rss [<!ENTITY % p SYSTEM "{path}"> %p;]>', id="parameter-entity"),
    ],
)
def test_a_feed_cannot_make_vigie_read_a_local_file(doctype: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("LOCAL-FILE-MARKER-7f3a", encoding="utf-8")
    head = doctype.format(path=secret.as_uri())
    body = (
        f'<?xml version="1.0"?>{head}<rss version="2.0"><channel><title>T &amp; &xxe;</title>'
        "<item><title>Laiterie &xxe;</title><link>https://a.example/1</link></item>"
        "</channel></rss>"
    ).encode()
    try:
        entries, _ = parse_feed(
            body, source="test", url="http://127.0.0.1/feeds/x", headers={}, max_entries=10
        )
    except ParseError as err:
        assert "LOCAL-FILE-MARKER" not in str(err)
    else:
        assert "LOCAL-FILE-MARKER" not in repr(entries)


ENTITY_FEED = (
    '<?xml version="1.0" encoding="{encoding}"?>'
    '<!DOCTYPE rss [<!ENTITY boom "EXPANDED">]>'
    '<rss version="2.0"><channel><title>t</title>'
    "<item><title>&boom;</title><link>https://presse.example/1</link></item>"
    "</channel></rss>"
)


@pytest.mark.parametrize(
    ("encoding", "bom", "declared"),
    [
        pytest.param("utf-16-le", b"\xff\xfe", "utf-16", id="utf-16-le-bom"),
        pytest.param("utf-16-be", b"\xfe\xff", "utf-16", id="utf-16-be-bom"),
        pytest.param("utf-16-le", b"", "utf-16le", id="utf-16-le-declared"),
        pytest.param("utf-32-le", b"\xff\xfe\x00\x00", "utf-32", id="utf-32-le-bom"),
        pytest.param("utf-32-be", b"\x00\x00\xfe\xff", "utf-32", id="utf-32-be-bom"),
        pytest.param("utf-7", b"", "utf-7", id="utf-7"),
    ],
)
def test_entity_declarations_are_refused_in_any_encoding(
    encoding: str, bom: bytes, declared: str
) -> None:
    """Issue 20, item 7: "<!ENTITY" was looked for in the bytes, where UTF-16 spells it
    "<\\0!\\0E\\0..." (and feedparser expanded the entity). It is looked for after decoding."""
    text = ENTITY_FEED.format(encoding=declared)
    if encoding == "utf-7":  # "<" as "+ADw-": ASCII bytes that decode to "<!ENTITY"
        body = text.replace("<!ENTITY", "+ADw-!ENTITY").encode("ascii")
    else:
        body = bom + text.encode(encoding)
    assert b"<!ENTITY" not in body
    with pytest.raises(ParseError, match="entities"):
        parse_feed(body, source="test", url="http://127.0.0.1/feeds/x", headers={}, max_entries=10)
