"""The parsers of tasks/collect/sources.py on response files built from each API's documented format
(tests/fixtures/sources/<kind>/): fields, UTC times, reach, author, malformed items skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.collect.normalise import normalise_entries
from tasks.collect.sources import Page, parse_document, plan_requests, with_params
from vigie.errors import ParseError
from vigie.models import SourceState
from vigie.settings import JsonMapping, Source

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
COLLECTED = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
MAPPING = JsonMapping(
    items="data.items",
    id="id",
    title="headline",
    url="link",
    summary="body",
    author="by.name",
    published_at="published",
    reach="stats.shares",
    next="paging.next",
)


def _source(kind: str, **fields: object) -> Source:
    defaults: dict[str, object] = {
        "jsonfeed": {"url": "https://bulletin.example/feed.json"},
        "news_search": {"language": "fr", "region": "CA", "query": '"laiterie boréale"'},
        "reddit": {"query": "boreale"},
        "mastodon": {"instance": "piaille.fr", "tag": "LaiterieBoreale"},
        "bluesky": {"query": "boreale"},
        "hackernews": {"query": "boreale"},
        "json_api": {"url": "https://veille.example/api/mentions", "mapping": MAPPING},
    }[kind]  # type: ignore[assignment]
    return Source.model_validate({"name": kind, "kind": kind, **defaults, **fields})


def _parse(kind: str, name: str, url: str, marker: str | None = None, **fields: object) -> Page:
    body = (FIXTURES / kind / name).read_bytes()
    return parse_document(_source(kind, **fields), body, url=url, marker=marker)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- JSON Feed ---------------------------------------------------------------------------------


def test_jsonfeed_items_authors_dates_and_next_page() -> None:
    page = _parse("jsonfeed", "feed.json", "https://bulletin.example/feed.json")
    first, brief, odd = page.entries
    assert first.title == "Rappel : la Laiterie Boréale retire un fromage"
    assert first.guid == "https://bulletin.example/2026/11/25/rappel-fromage"
    assert first.author == "Marc Gagnon"  # 1.1 item authors
    assert first.published_at == _at("2026-11-25T15:00:00+00:00")  # -05:00 to UTC
    assert first.language == "fr"
    # No title: the text stands for one; no item author: the feed's authors.
    assert brief.title.startswith("Brève : la Laiterie Boréale ne commente pas")
    assert brief.author == "Rédaction du Bulletin"
    assert brief.language == "fr"  # the feed's fr-CA
    # A numeric id, a title of the wrong type and an unreadable date: kept, fields left empty.
    assert odd.guid == "12345"
    assert odd.title.startswith("Le marché du lait")
    assert odd.published_at is None
    # No id nor url, not an object, no text at all: skipped.
    assert len(page.entries) == 3
    assert page.next_url == "https://bulletin.example/feed-2.json"  # relative next_url resolved
    assert page.newest == str(int(_at("2026-11-25T15:00:00+00:00").timestamp()))


def test_jsonfeed_1_0_author_object() -> None:
    page = _parse("jsonfeed", "v1.json", "https://fromager.example/feed.json")
    assert [e.author for e in page.entries] == ["Paul F.", "Paul Fromager"]
    assert page.entries[0].published_at == _at("2026-11-25T07:00:00+00:00")
    assert page.next_url is None


def test_jsonfeed_content_html_is_cleaned_by_normalise() -> None:
    page = _parse("jsonfeed", "feed.json", "https://bulletin.example/feed.json")
    mention = normalise_entries(
        page.entries[:1], source=_source("jsonfeed"), collected_at=COLLECTED
    )[0]
    assert mention.url == "https://bulletin.example/2026/11/25/rappel-fromage"  # no utm_*
    assert "<" not in mention.summary


def test_jsonfeed_marker_stops_at_items_already_seen() -> None:
    marker = str(int(_at("2026-11-25T14:30:00+00:00").timestamp()))
    page = _parse("jsonfeed", "feed.json", "https://bulletin.example/feed.json", marker)
    assert page.reached


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Moved</body></html>", "not JSON"),
        (b"", "not JSON"),
        (b'{"version": "https://jsonfeed.org/version/1.1"', "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "not a JSON Feed"),
        (b'{"version": "1.1", "items": []}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', "items list"),
        (b"[" * 100_000, "not JSON"),  # nesting deep enough to exhaust the recursion limit
    ],
)
def test_jsonfeed_refuses_what_is_not_a_json_feed(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_document(_source("jsonfeed"), body, url="https://bulletin.example/feed.json")


# --- news search -------------------------------------------------------------------------------


def test_news_search_publisher_becomes_author() -> None:
    page = _parse("news_search", "search.xml", "https://news.google.com/rss/search?q=x")
    titles = [(e.title, e.author) for e in page.entries]
    assert titles == [
        ("Rappel d'un cheddar de la Laiterie Boréale : ce qu'il faut savoir", "La Presse"),
        ("La Laiterie Boréale", "Le Devoir"),
        ("Boréale sans éditeur", None),
    ]
    assert page.entries[1].published_at == _at("2026-11-25T14:30:00+00:00")
    assert page.newest is None and page.next_url is None


def test_news_search_url_has_query_language_and_region() -> None:
    source = _source("news_search", url="https://news.google.com/")
    (url,) = plan_requests(source, None)
    assert url == (
        "https://news.google.com/rss/search?q=%22laiterie+bor%C3%A9ale%22"
        "&hl=fr-CA&gl=CA&ceid=CA%3Afr"
    )


def test_news_search_refuses_an_html_page() -> None:
    with pytest.raises(ParseError, match="HTML"):
        parse_document(
            _source("news_search"), b"<!DOCTYPE html><html></html>", url="https://x.example/"
        )


# --- Reddit ------------------------------------------------------------------------------------


def test_reddit_listing_posts_score_and_next_page() -> None:
    url = "https://www.reddit.com/search.json?q=boreale&sort=new&limit=100"
    page = _parse("reddit", "search.json", url)
    top, deleted, odd = page.entries
    assert top.title.startswith("La Laiterie Boréale rappelle son cheddar")
    assert top.link == (
        "https://www.reddit.com/r/Quebec/comments/1h5p5a/la_laiterie_boreale_rappelle_son_cheddar/"
    )
    assert top.guid == "t3_1h5p5a"
    assert (top.author, top.reach) == ("fromagefan_qc", 342)
    assert top.published_at == _at("2026-11-25T15:00:00+00:00")  # created_utc, a float
    assert deleted.author is None  # "[deleted]"
    assert odd.reach is None  # a score that is not a number
    assert page.next_url == with_params(url, after="t3_1h5p3c")
    assert page.newest == "1795618800"
    assert not page.reached


def test_reddit_stops_at_the_last_marker() -> None:
    page = _parse(
        "reddit", "search-new.json", "https://www.reddit.com/search.json?q=b", marker="1795618800"
    )
    assert page.reached
    assert page.next_url is None
    assert page.newest == "1795622400"


def test_reddit_refuses_other_json() -> None:
    with pytest.raises(ParseError, match="not a Reddit listing"):
        parse_document(_source("reddit"), b'{"kind": "t3"}', url="https://www.reddit.com/")


# --- Mastodon ----------------------------------------------------------------------------------


def test_mastodon_tag_timeline_statuses() -> None:
    url = "https://piaille.fr/api/v1/timelines/tag/LaiterieBoreale?limit=40"
    page = _parse("mastodon", "tag.json", url)
    julie, boosted, odd, marc = page.entries
    assert julie.author == "Julie Tremblay"
    assert julie.reach == 1250  # followers
    assert julie.published_at == _at("2026-11-25T15:10:00+00:00")
    assert julie.link == "https://piaille.fr/@jtremblay/113552000000000005"
    assert julie.language == "fr"
    # The title is the post's text, through clean_text: no tags, entities decoded.
    assert julie.title == (
        "Encore un rappel chez #LaiterieBoreale & personne ne répond au téléphone 😡 "
        "Ça commence à faire beaucoup. Vraiment."
    )
    # A boost is read as the boosted post; its content warning stands for its title.
    assert (boosted.author, boosted.reach, boosted.title) == (
        "Veille Conso",
        8800,
        "Rappel alimentaire",
    )
    assert boosted.link == "https://mamot.fr/@conso/113551900000000001"
    # Wrong types: kept with empty fields. No id nor url, not an object: skipped.
    assert (odd.author, odd.reach, odd.published_at) == (None, None, None)
    assert marc.title == "@laiterie vous comptez répondre ?"
    assert page.newest == "113552000000000005"
    # A first cycle reads older pages.
    assert page.next_url == with_params(url, max_id="113552000000000002")


def test_mastodon_html_content_is_cleaned_by_normalise() -> None:
    page = _parse("mastodon", "tag.json", "https://piaille.fr/api/v1/timelines/tag/x")
    mention = normalise_entries(
        page.entries[:1], source=_source("mastodon"), collected_at=COLLECTED
    )[0]
    assert mention.summary == mention.title
    assert "<" not in mention.summary and "&amp;" not in mention.summary
    assert mention.reach == 1250
    assert mention.platform == "social"


def test_mastodon_search_and_newer_pages_with_a_marker() -> None:
    url = "https://piaille.fr/api/v2/search?q=boreale&type=statuses&min_id=113552000000000005"
    page = _parse("mastodon", "search.json", url, marker="113552000000000005")
    (status,) = page.entries
    assert (status.author, status.reach, status.language) == ("Food Watch", 23000, "en")
    assert page.next_url == with_params(url, min_id="113552000000000006")


def test_mastodon_never_reads_statuses_at_or_before_the_marker() -> None:
    page = _parse(
        "mastodon",
        "tag.json",
        "https://piaille.fr/api/v1/timelines/tag/x?min_id=113552000000000003",
        marker="113552000000000003",
    )
    assert [e.author for e in page.entries] == ["Julie Tremblay", "Veille Conso"]
    assert page.reached and page.next_url is None


def test_mastodon_plan_tag_timeline_and_search() -> None:
    source = _source("mastodon", query='boreale OR "laiterie boréale"')
    urls = plan_requests(source, SourceState("mastodon", marker="113552000000000005"))
    assert urls == [
        "https://piaille.fr/api/v1/timelines/tag/LaiterieBoreale?limit=40"
        "&min_id=113552000000000005",
        "https://piaille.fr/api/v2/search?q=boreale&type=statuses&limit=40"
        "&min_id=113552000000000005",
        "https://piaille.fr/api/v2/search?q=%22laiterie+bor%C3%A9ale%22&type=statuses"
        "&limit=40&min_id=113552000000000005",
    ]


# --- Bluesky -----------------------------------------------------------------------------------


def test_bluesky_posts_likes_reposts_and_cursor() -> None:
    url = "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts?q=boreale&sort=latest"
    page = _parse("bluesky", "search.json", url)
    marie, agency = page.entries
    assert marie.link == "https://bsky.app/profile/marielavoie.bsky.social/post/3lbq2zkyiuc2x"
    assert marie.guid == "at://did:plc:k3a7xq2mfs3ybl6y6ukxqsdd/app.bsky.feed.post/3lbq2zkyiuc2x"
    assert (marie.author, marie.reach, marie.language) == ("Marie Lavoie", 31 + 14, "fr")
    assert marie.published_at == _at("2026-11-25T15:20:00.100+00:00")
    # No display name: the handle; a -05:00 createdAt in UTC; only reposts known.
    assert (agency.author, agency.reach) == ("foodsafety.example.com", 2)
    assert agency.published_at == _at("2026-11-25T15:04:58+00:00")
    assert page.next_url == with_params(url, cursor="25")
    assert page.newest == str(int(_at("2026-11-25T15:20:01+00:00").timestamp()))  # indexedAt


def test_bluesky_plan_uses_since_from_the_marker() -> None:
    source = _source("bluesky", query="boreale OR cheddar", language="fr")
    urls = plan_requests(source, SourceState("b", marker="1795620001"))
    assert urls == [
        "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts?q=boreale&sort=latest"
        "&limit=100&lang=fr&since=2026-11-25T15%3A20%3A01Z",
        "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts?q=cheddar&sort=latest"
        "&limit=100&lang=fr&since=2026-11-25T15%3A20%3A01Z",
    ]


def test_bluesky_older_posts_end_the_paging() -> None:
    page = _parse("bluesky", "search-2.json", "https://x.example/xrpc/s?q=b", marker="1795620001")
    assert page.entries == [] and page.reached


# --- Hacker News -------------------------------------------------------------------------------


def test_hackernews_stories_comments_points_and_pages() -> None:
    url = "https://hn.algolia.com/api/v1/search_by_date?query=boreale&tags=%28story%2Ccomment%29"
    page = _parse("hackernews", "search.json", url)
    comment, story = page.entries
    assert comment.title == "Re: Quebec dairy Laiterie Boréale recalls cheddar"
    assert comment.link == "https://news.ycombinator.com/item?id=4250"
    assert (comment.author, comment.reach) == ("cheesemonger", None)
    assert story.title == "Quebec dairy Laiterie Boréale recalls cheddar"
    assert (story.author, story.reach) == ("jdoe", 57)
    assert story.published_at == _at("2026-11-25T14:45:00+00:00")
    assert page.next_url == with_params(url, page=1)
    assert page.newest == "1795618500"
    mention = normalise_entries([comment], source=_source("hackernews"), collected_at=COLLECTED)[0]
    assert mention.summary == (
        "I worked near Laiterie Boréale's plant: the recall process there is solid. "
        'Still, "lot 4411" is a big one.'
    )


def test_hackernews_last_page_has_no_next() -> None:
    page = _parse("hackernews", "search-2.json", "https://hn.algolia.com/api/v1/s?page=1")
    (story,) = page.entries
    assert story.reach is None  # points given as a string
    assert page.next_url is None


def test_hackernews_plan_one_search_per_alternative_with_the_marker() -> None:
    source = _source("hackernews", query='boreale OR "laiterie boréale"')
    urls = plan_requests(source, SourceState("hn", marker="1795618500"))
    assert [u.split("?")[1] for u in urls] == [
        "query=boreale&tags=%28story%2Ccomment%29&hitsPerPage=100"
        "&numericFilters=created_at_i%3E%3D1795618500",
        "query=%22laiterie+bor%C3%A9ale%22&tags=%28story%2Ccomment%29&hitsPerPage=100"
        "&numericFilters=created_at_i%3E%3D1795618500",
    ]


# --- JSON API ----------------------------------------------------------------------------------


def test_json_api_mapping_reads_dotted_paths() -> None:
    page = _parse("json_api", "items.json", "https://veille.example/api/mentions")
    first, untitled, undated = page.entries
    assert first.title == "Rappel Boréale : les consommateurs inquiets"
    assert (first.guid, first.author, first.reach) == ("981", "Chantal Roy", 87)
    assert first.published_at == _at("2026-11-25T14:30:00+00:00")
    # A title that is not text: the summary stands for it; a relative link is resolved;
    # a Unix time is read; an author path that leads nowhere leaves the author empty.
    assert untitled.title.startswith("Texte sans titre")
    assert untitled.link == "https://veille.example/articles/982"
    assert untitled.published_at == _at("2026-11-25T14:15:00+00:00")
    assert (untitled.author, untitled.reach) == (None, 12)
    assert (undated.published_at, undated.reach) == (None, None)  # a boolean is no count
    assert page.next_url == "https://veille.example/api/mentions?page=2"


def test_json_api_items_must_lead_to_a_list() -> None:
    source = _source("json_api", mapping=MAPPING.model_copy(update={"items": "meta"}))
    body = (FIXTURES / "json_api" / "items.json").read_bytes()
    with pytest.raises(ParseError, match=r"mapping\.items 'meta'"):
        parse_document(source, body, url="https://veille.example/api/mentions")


def test_json_api_root_list() -> None:
    mapping = JsonMapping(items=".", title="t", url="u")
    body = b'[{"t": "Boreale", "u": "https://x.example/1"}, {"t": "sans lien"}]'
    page = parse_document(_source("json_api", mapping=mapping), body, url="https://x.example/api")
    assert [(e.title, e.link) for e in page.entries] == [("Boreale", "https://x.example/1")]


def test_json_api_garbage_is_not_json() -> None:
    body = (FIXTURES / "json_api" / "garbage.txt").read_bytes()
    with pytest.raises(ParseError, match="not JSON"):
        parse_document(_source("json_api"), body, url="https://veille.example/api/mentions")


@pytest.mark.parametrize("kind", ["reddit", "mastodon", "bluesky", "hackernews"])
def test_every_api_parser_refuses_non_json(kind: str) -> None:
    with pytest.raises(ParseError, match="not JSON"):
        parse_document(_source(kind), b"<html>rate limited</html>", url="https://x.example/")


@pytest.mark.parametrize("kind", ["reddit", "bluesky", "hackernews"])
def test_search_kinds_need_a_query(kind: str) -> None:
    source = _source(kind).model_copy(update={"query": None})
    with pytest.raises(ValueError, match="needs a query"):
        plan_requests(source, None)


def test_max_entries_bounds_each_page() -> None:
    body = (FIXTURES / "reddit" / "search.json").read_bytes()
    page = parse_document(_source("reddit"), body, url="https://x.example/", max_entries=1)
    assert len(page.entries) == 1
