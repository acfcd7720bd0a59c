"""The GDELT DOC 2.0 kind of tasks/collect/sources.py on replies written by hand in the API's
documented
shape (tests/fixtures/sources/gdelt/): the requests planned, articles and the volume timeline
parsed field by field, what is malformed skipped or refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tasks.collect.normalise import normalise_entries
from tasks.collect.sources import GDELT_MAX_RECORDS, parse_document, plan_requests
from vigie.errors import ParseError
from vigie.models import OutsideVolume, SourceState
from vigie.settings import Source

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources" / "gdelt"
ARTLIST = (
    "https://api.gdeltproject.org/api/v2/doc/doc?query=boreale&mode=artlist&format=json"
    "&maxrecords=250&sort=datedesc"
)
TIMELINE = (
    "https://api.gdeltproject.org/api/v2/doc/doc?query=boreale&mode=timelinevolraw"
    "&format=json&timespan=1d"
)


def _source(**fields: object) -> Source:
    return Source.model_validate(
        {"name": "GDELT", "kind": "gdelt", "query": '"laiterie boréale" OR boréale', **fields}
    )


def _body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_the_source_defaults_to_the_public_api_and_news() -> None:
    source = _source()
    assert source.url == "https://api.gdeltproject.org"
    assert source.platform == "news"


def test_first_cycle_asks_for_the_newest_articles_then_the_timeline() -> None:
    articles, timeline = plan_requests(_source(), None)
    assert articles.startswith("https://api.gdeltproject.org/api/v2/doc/doc?")
    assert _params(articles) == {
        "query": '("laiterie boréale" OR boréale)',
        "mode": "artlist",
        "format": "json",
        "maxrecords": "250",
        "sort": "datedesc",
    }
    assert _params(timeline) == {
        "query": '("laiterie boréale" OR boréale)',
        "mode": "timelinevolraw",
        "format": "json",
        "timespan": "1d",
    }


def test_the_marker_becomes_startdatetime_and_language_narrows_the_query() -> None:
    marker = str(int(datetime(2026, 11, 26, 10, 15, tzinfo=UTC).timestamp()))
    articles, _ = plan_requests(
        _source(query="boréale", language="fr"), SourceState("GDELT", marker=marker)
    )
    params = _params(articles)
    assert params["startdatetime"] == "20261126101500"
    assert params["query"] == "boréale sourcelang:french"


def test_articles_are_read_field_by_field() -> None:
    page = parse_document(_source(), _body("artlist.json"), url=ARTLIST)
    titles = [e.title for e in page.entries]
    # No address, a title that is not text, an item that is not an object: skipped.
    assert titles == [
        "Laiterie Boréale rappelle trois fromages contaminés à la listeria",
        "Rappel de fromages : la Laiterie Boréale visée par une enquête de l'ACIA",
        "Boreale dairy recalls cheese over listeria fears",
        "Recrutement : la Laiterie Boréale embauche 40 personnes à Alma",
    ]
    first = page.entries[0]
    assert first.link == (
        "https://www.lapresse.ca/affaires/2026-11-26/laiterie-boreale-rappelle-trois-fromages.php"
    )
    assert first.published_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert first.author == "lapresse.ca"
    assert [e.language for e in page.entries] == ["fr", "fr", "en", "fr"]
    assert page.newest == str(int(first.published_at.timestamp()))
    assert page.next_url is None and not page.reached and page.volumes == []


def test_articles_become_mentions_identified_by_their_url() -> None:
    page = parse_document(_source(), _body("artlist.json"), url=ARTLIST)
    collected = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    mentions = normalise_entries(page.entries, source=_source(), collected_at=collected)
    assert len({m.mention_id for m in mentions}) == 4
    assert mentions[2].language == "en" and mentions[2].platform == "news"
    assert mentions[0].published_at == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


def test_articles_older_than_the_marker_are_not_read_again() -> None:
    marker = str(int(datetime(2026, 11, 26, 9, 45, tzinfo=UTC).timestamp()))
    page = parse_document(_source(), _body("artlist.json"), url=ARTLIST, marker=marker)
    # The marker's own second is read again (inclusive), older ones are not.
    assert len(page.entries) == 2 and page.reached


def test_a_full_page_asks_for_the_older_ones_ending_where_it_ends() -> None:
    article = {
        "url": "https://www.lapresse.ca/a",
        "title": "Laiterie Boréale",
        "seendate": "20261126T101500Z",
    }
    articles = [
        {
            **article,
            "url": f"https://www.lapresse.ca/{n}",
            "seendate": f"20261126T10{n // 5:02d}00Z",
        }
        for n in range(GDELT_MAX_RECORDS)
    ]
    body = json.dumps({"articles": articles}).encode()
    page = parse_document(_source(), body, url=ARTLIST)
    assert page.next_url is not None
    assert _params(page.next_url)["enddatetime"] == "20261126100000"


def test_no_article_is_an_empty_object() -> None:
    page = parse_document(_source(), _body("empty.json"), url=ARTLIST)
    assert page.entries == [] and page.newest is None


def test_the_timeline_gives_volume_points() -> None:
    page = parse_document(_source(), _body("timeline.json"), url=TIMELINE)
    assert page.entries == [] and page.newest is None
    assert len(page.volumes) == 96
    assert page.volumes[-1] == OutsideVolume(datetime(2026, 11, 26, 10, 15, tzinfo=UTC), 4)
    assert sum(p.value for p in page.volumes[-4:]) == 12


@pytest.mark.parametrize(
    ("name", "url", "reason"),
    [
        ("too-short.txt", ARTLIST, "not JSON"),
        ("articles-not-a-list.json", ARTLIST, "articles is not a list"),
        ("too-short.txt", TIMELINE, "not JSON"),
    ],
    ids=["text-error", "articles-not-a-list", "timeline-text-error"],
)
def test_malformed_replies_are_parse_errors(name: str, url: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_document(_source(), _body(name), url=url)


def test_a_timeline_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ParseError, match="timeline is not a list"):
        parse_document(_source(), b'{"timeline": {"data": []}}', url=TIMELINE)
    page = parse_document(
        _source(),
        b'{"timeline": [{"series": "Article Count", "data": [{"date": "soon", "value": 3}, '
        b'{"date": "20261126T101500Z", "value": "12"}, '
        b'{"date": "20261126T103000Z", "value": 2}]}]}',
        url=TIMELINE,
    )
    assert page.volumes == [OutsideVolume(datetime(2026, 11, 26, 10, 30, tzinfo=UTC), 2)]
