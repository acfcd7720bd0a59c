"""`tasks.collect.xmlbounds`: how deep a document nests, counted without building it, and what is
refused before a parser sees it."""

from __future__ import annotations

import pytest

from tasks.collect.normalise import parse_feed
from tasks.collect.xmlbounds import MAX_DEPTH, nesting_depth
from vigie.errors import ParseError


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"<r><a><b/></a><c></c></r>", 2, id="empty-element"),
        pytest.param(b"<r><a t=\"x>y/>z\"/><a t='/>'/></r>", 1, id="gt-in-attributes"),
        pytest.param(b"<r><!-- <a><a><a> --><![CDATA[<b><b><b>]]><?pi <c><c>?></r>", 1, id="text"),
        pytest.param(b"<!DOCTYPE r><r><a></a></r>", 2, id="doctype"),
        pytest.param(b"<r><!-- left open <a><a><a>", 1, id="unclosed-comment"),
        pytest.param(b"<r>" + b"<p>x<br>y<BR/>z<img src='i'></p>" * 500 + b"</r>", 2, id="html"),
        pytest.param(b"<r>" + b"<a>" * 1000 + b"</a>" * 1000 + b"</r>", 1001, id="nested"),
    ],
)
def test_nesting_depth_counts_elements_only(document: bytes, depth: int) -> None:
    assert nesting_depth(document) == depth


def test_nesting_depth_is_the_same_across_its_chunks() -> None:
    """Counted a megabyte at a time: a document of several keeps its running depth."""
    body = b"<r>" + b"<a><b>" + b"<c>text</c>" * 400_000 + b"</b></a></r>"
    assert len(body) > 4_000_000
    assert nesting_depth(body) == 4


def test_a_broken_feed_with_open_html_tags_is_not_taken_for_a_deep_one() -> None:
    """Unescaped HTML in a broken feed leaves <br> and <img> open: they nest nothing."""
    item = "<item><title>Rappel {n}</title><link>https://presse.example/{n}</link>"
    item += "<description>Ligne<br>ligne<img src='x.png'> & suite</description></item>"
    body = '<rss version="2.0"><channel><title>t</title>'
    body += "".join(item.format(n=n) for n in range(400)) + "</channel></rss>"
    entries, _ = parse_feed(
        body.encode(), source="s", url="http://127.0.0.1/f", headers={}, max_entries=1000
    )
    assert len(entries) == 400


def test_a_feed_nested_just_past_the_bound_is_refused_with_the_reason() -> None:
    deep = b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH
    body = b'<rss version="2.0"><channel><item><title>x</title><description>'
    body += deep + b"</description></item></channel></rss>"
    with pytest.raises(ParseError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_feed(body, source="s", url="http://127.0.0.1/f", headers={}, max_entries=10)
    shallower = body.replace(b"<a>", b"", 4).replace(b"</a>", b"", 4)
    assert parse_feed(shallower, source="s", url="http://127.0.0.1/f", headers={}, max_entries=10)
