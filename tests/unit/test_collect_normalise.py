"""Unit tests of the pure parts of `tasks.collect.fetch`: text cleaning, canonical URLs, story keys,
normalisation of parsed entries into mentions, and merging of duplicate mentions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tasks.collect.fetch import collect_sources
from tasks.collect.normalise import (
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    canonical_url,
    clean_text,
    merge_duplicates,
    normalise_entries,
    story_key,
)
from vigie.models import FeedEntry, FetchResult, Mention
from vigie.settings import Source

COLLECTED_AT = datetime(2024, 5, 14, 15, 0, tzinfo=UTC)
PUBLISHED_AT = datetime(2024, 5, 14, 8, 30, tzinfo=UTC)


def source(**overrides: object) -> Source:
    fields: dict[str, object] = {
        "name": "Le Quotidien du Nord",
        "url": "https://quotidien-du-nord.example/rss.xml",
        "platform": "news",
        "tier": 1,
    }
    fields.update(overrides)
    return Source.model_validate(fields)


def entry(**overrides: object) -> FeedEntry:
    fields: dict[str, object] = {
        "title": "Rappel de fromages à la Laiterie Boréale",
        "link": "https://quotidien-du-nord.example/2024/05/rappel",
        "guid": "qdn-0001",
        "summary": "Trois fromages sont rappelés.",
        "author": "Marie Dubois",
        "published_at": PUBLISHED_AT,
        "language": None,
    }
    fields.update(overrides)
    return FeedEntry(**fields)  # type: ignore[arg-type]


def normalise_one(item: FeedEntry, src: Source | None = None) -> Mention:
    (mention,) = normalise_entries([item], source=src or source(), collected_at=COLLECTED_AT)
    return mention


# --- clean_text ------------------------------------------------------------------------------


def test_clean_text_removes_tags_and_keeps_their_text() -> None:
    assert clean_text("<p>Un <b>rappel</b> de <a href='x'>fromages</a></p>", 100) == (
        "Un rappel de fromages"
    )


def test_clean_text_drops_script_and_style_content() -> None:
    value = "<script>alert('x')</script>Avis<style>p { color: red }</style> important"
    assert clean_text(value, 100) == "Avis important"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("<p>Laiterie</p><p>Boréale</p>", id="paragraphs"),
        pytest.param("<div>Laiterie</div><div>Boréale</div>", id="divs"),
        pytest.param("<ul><li>Laiterie</li><li>Boréale</li></ul>", id="list-items"),
        pytest.param("Laiterie<br>Boréale", id="line-break"),
        pytest.param("Laiterie<br/>Boréale", id="self-closing-line-break"),
    ],
)
def test_clean_text_keeps_words_of_adjacent_blocks_apart(value: str) -> None:
    assert clean_text(value, 100) == "Laiterie Boréale"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("<h2>Rappel</h2><h2>Boréale</h2>", id="headings"),
        pytest.param("<table><tr><td>Rappel</td><td>Boréale</td></tr></table>", id="cells"),
        pytest.param("<p>Rappel</p>Boréale", id="text-after-closing-paragraph"),
    ],
)
def test_clean_text_keeps_words_of_other_blocks_apart(value: str) -> None:
    assert clean_text(value, 100) == "Rappel Boréale"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("R&amp;D &eacute;t&eacute;", "R&D été", id="named-without-tags"),
        pytest.param("<p>R&amp;D &#233;t&#xe9;</p>", "R&D été", id="numeric-with-tags"),
        pytest.param("5 &lt; 10", "5 < 10", id="lt-without-tags"),
    ],
)
def test_clean_text_unescapes_entities(value: str, expected: str) -> None:
    assert clean_text(value, 100) == expected


def test_clean_text_decodes_entities_once_even_with_tags() -> None:
    # The HTML "<p>a &amp;lt; b</p>" displays as the text "a &lt; b" (as without the tags).
    assert clean_text("<p>a &amp;lt; b</p>", 100) == clean_text("a &amp;lt; b", 100) == "a &lt; b"


@pytest.mark.parametrize(
    "control",
    [
        pytest.param("\r", id="CR"),
        pytest.param("\n", id="LF"),
        pytest.param("\r\n", id="CRLF"),
        pytest.param("\x00", id="NUL"),
        pytest.param("\x1b", id="ESC"),
        pytest.param("\u2028", id="line-separator"),
    ],
)
def test_clean_text_removes_control_characters(control: str) -> None:
    cleaned = clean_text(f"Laiterie{control}Boréale", 100)
    assert control not in cleaned
    assert cleaned == "Laiterie Boréale"


@pytest.mark.parametrize(
    "invisible",
    [
        pytest.param("\u202e", id="RLO-bidi-override"),
        pytest.param("\u00ad", id="soft-hyphen"),
        pytest.param("\u200b", id="zero-width-space"),
    ],
)
def test_clean_text_drops_invisible_format_characters(invisible: str) -> None:
    """Format characters are dropped, not spaced, so a word split by one still matches."""
    assert clean_text(f"Bo{invisible}réale", 100) == "Boréale"


def test_clean_text_collapses_whitespace_and_strips_ends() -> None:
    assert clean_text("  un \t\t deux \n\n   trois  ", 100) == "un deux trois"


@pytest.mark.parametrize("value", [None, "", "   ", "<p> </p>"])
def test_clean_text_of_nothing_is_empty(value: str | None) -> None:
    assert clean_text(value, 100) == ""


def test_clean_text_truncates_with_an_ellipsis_at_max_chars() -> None:
    cleaned = clean_text("a" * 50, 10)
    assert cleaned == "a" * 9 + "…"
    assert len(cleaned) == 10


def test_clean_text_keeps_text_of_exactly_max_chars() -> None:
    assert clean_text("a" * 10, 10) == "a" * 10


def test_clean_text_does_not_leave_a_space_before_the_ellipsis() -> None:
    assert clean_text("abcdefgh ijkl", 10) == "abcdefgh…"


def test_clean_text_keeps_a_lone_less_than_sign() -> None:
    assert clean_text("5 < 10 et 20 > 3", 100) == "5 < 10 et 20 > 3"


# --- canonical_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://ex.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x",
            "https://ex.com/a",
            id="utm-only",
        ),
        pytest.param("https://ex.com/a?fbclid=IwAR0", "https://ex.com/a", id="fbclid"),
        pytest.param("https://ex.com/a?gclid=Cj0K", "https://ex.com/a", id="gclid"),
        pytest.param("https://ex.com/a?UTM_Source=x", "https://ex.com/a", id="utm-upper-case"),
    ],
)
def test_canonical_url_removes_tracking_parameters(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_keeps_other_parameters_in_order() -> None:
    url = "https://ex.com/a?id=7&utm_source=rss&page=2&fbclid=z&lang=fr&gclid=q"
    assert canonical_url(url) == "https://ex.com/a?id=7&page=2&lang=fr"


def test_canonical_url_lowercases_scheme_and_host_but_not_path() -> None:
    assert canonical_url("HTTPS://Quotidien-Du-Nord.EXAMPLE/Article/X") == (
        "https://quotidien-du-nord.example/Article/X"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("http://ex.com:80/a", "http://ex.com/a", id="http-80"),
        pytest.param("https://ex.com:443/a", "https://ex.com/a", id="https-443"),
    ],
)
def test_canonical_url_drops_the_default_port(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("http://ex.com:8080/a", "http://ex.com:8080/a", id="http-8080"),
        pytest.param("https://ex.com:80/a", "https://ex.com:80/a", id="https-on-80"),
    ],
)
def test_canonical_url_keeps_a_non_default_port(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_drops_the_fragment() -> None:
    assert canonical_url("https://ex.com/a?b=1#commentaires") == "https://ex.com/a?b=1"


def test_canonical_url_gives_an_empty_path_a_slash() -> None:
    assert canonical_url("https://ex.com") == "https://ex.com/"


def test_canonical_url_strips_surrounding_whitespace() -> None:
    assert canonical_url("  https://ex.com/a \n") == "https://ex.com/a"


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTPS://Ex.com:443/a?x=1&utm_source=y#f")
    assert canonical_url(once) == once


def test_canonical_url_keeps_the_brackets_of_an_ipv6_host() -> None:
    assert canonical_url("http://[::1]:8080/x") == "http://[::1]:8080/x"


# --- story_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("RAPPEL DE FROMAGES À LA LAITERIE BORÉALE", id="upper-case"),
        pytest.param("Rappel de fromages a la Laiterie Boreale", id="no-accents"),
        pytest.param("« Rappel de fromages » : à la Laiterie Boréale !", id="punctuation"),
        pytest.param("  Rappel  de fromages à la   Laiterie Boréale ", id="spacing"),
    ],
)
def test_story_key_is_the_same_for_the_same_words(other: str) -> None:
    assert story_key(other) == story_key("Rappel de fromages à la Laiterie Boréale")


def test_story_key_differs_for_different_words() -> None:
    assert story_key("Rappel de fromages") != story_key("Rappel de yogourts")


def test_story_key_differs_for_the_same_words_in_another_order() -> None:
    assert story_key("fromages rappel") != story_key("rappel fromages")


# --- normalise_entries -----------------------------------------------------------------------


def test_normalise_gives_the_same_id_to_links_differing_only_by_tracking() -> None:
    plain = normalise_one(entry(link="https://ex.com/article?id=3"))
    tracked = normalise_one(
        entry(link="https://EX.com/article?utm_source=rss&id=3&fbclid=z#top", guid="other")
    )
    assert plain.mention_id == tracked.mention_id


def test_normalise_gives_different_ids_to_different_links() -> None:
    one = normalise_one(entry(link="https://ex.com/article-1"))
    two = normalise_one(entry(link="https://ex.com/article-2"))
    assert one.mention_id != two.mention_id


def test_normalise_id_from_url_does_not_depend_on_the_source() -> None:
    # Syndicated copies of one URL seen in two feeds are one mention.
    one = normalise_one(entry(), source(name="A"))
    two = normalise_one(entry(), source(name="B"))
    assert one.mention_id == two.mention_id


def test_normalise_stores_the_canonical_url() -> None:
    mention = normalise_one(entry(link=" HTTPS://Ex.com/a?utm_medium=rss#x "))
    assert mention.url == "https://ex.com/a"


def test_normalise_falls_back_to_the_guid_without_an_http_link() -> None:
    first = normalise_one(entry(link=None, guid="tag:ex.com,2024:1", title="Titre A"))
    retitled = normalise_one(entry(link=None, guid="tag:ex.com,2024:1", title="Titre B"))
    other = normalise_one(entry(link=None, guid="tag:ex.com,2024:2", title="Titre A"))
    assert first.mention_id == retitled.mention_id
    assert first.mention_id != other.mention_id


def test_normalise_guid_id_depends_on_the_source() -> None:
    one = normalise_one(entry(link=None, guid="1"), source(name="A"))
    two = normalise_one(entry(link=None, guid="1"), source(name="B"))
    assert one.mention_id != two.mention_id


def test_normalise_without_link_or_guid_still_gives_a_stable_id() -> None:
    item = entry(link=None, guid=None)
    assert normalise_one(item).mention_id == normalise_one(item).mention_id


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://ex.com/a", id="ftp"),
    ],
)
def test_normalise_keeps_a_non_http_link_as_is(link: str) -> None:
    assert normalise_one(entry(link=link)).url == link


def test_normalise_uses_the_guid_for_the_id_of_a_non_http_link() -> None:
    one = normalise_one(entry(link="javascript:alert(1)", guid="g-1"))
    two = normalise_one(entry(link="javascript:alert(2)", guid="g-1"))
    assert one.mention_id == two.mention_id


def test_normalise_keeps_the_published_time() -> None:
    assert normalise_one(entry()).published_at == PUBLISHED_AT


def test_normalise_published_at_falls_back_to_collected_at() -> None:
    mention = normalise_one(entry(published_at=None))
    assert mention.published_at == COLLECTED_AT
    assert mention.collected_at == COLLECTED_AT


@pytest.mark.parametrize(
    ("source_language", "feed_language", "expected"),
    [
        pytest.param(None, "fr-CA", "fr", id="feed-fr-CA"),
        pytest.param(None, "EN-us", "en", id="feed-EN-us"),
        pytest.param(None, "fr", "fr", id="feed-fr"),
        pytest.param("en", "fr-CA", "en", id="source-overrides-feed"),
        pytest.param("fr", None, "fr", id="source-only"),
        pytest.param(None, None, None, id="none"),
        pytest.param(None, "de-DE", None, id="unsupported-language"),
    ],
)
def test_normalise_language(
    source_language: str | None, feed_language: str | None, expected: str | None
) -> None:
    mention = normalise_one(entry(language=feed_language), source(language=source_language))
    assert mention.language == expected


def test_normalise_cleans_title_summary_and_author() -> None:
    mention = normalise_one(
        entry(
            title="<b>Rappel</b>\r\nBcc: x",
            summary="<p>Texte &amp; <script>alert(1)</script>suite</p>",
            author="  Marie\u202e Dubois ",
        )
    )
    assert (mention.title, mention.summary, mention.author) == (
        "Rappel Bcc: x",
        "Texte & suite",
        "Marie Dubois",
    )


def test_normalise_caps_title_and_summary_length() -> None:
    mention = normalise_one(entry(title="t" * 2000, summary="s" * 10000))
    assert len(mention.title) == MAX_TITLE_CHARS
    assert len(mention.summary) == MAX_SUMMARY_CHARS


def test_normalise_turns_an_empty_author_into_none() -> None:
    assert normalise_one(entry(author="  <br> ")).author is None


def test_normalise_copies_source_fields() -> None:
    mention = normalise_one(entry(), source(name="Forum", platform="forum", tier=3))
    assert (mention.source, mention.platform, mention.tier) == ("Forum", "forum", 3)


def test_normalise_story_id_groups_copies_with_the_same_title() -> None:
    one = normalise_one(entry(link="https://a.example/1", title="Rappel : Laiterie Boréale"))
    two = normalise_one(entry(link="https://b.example/9", title="RAPPEL – laiterie boreale"))
    assert one.story_id == two.story_id
    assert one.mention_id != two.mention_id


def test_normalise_keeps_entry_order() -> None:
    items = [entry(link=f"https://ex.com/{i}", title=f"Titre {i}") for i in range(5)]
    mentions = normalise_entries(items, source=source(), collected_at=COLLECTED_AT)
    assert [m.title for m in mentions] == [f"Titre {i}" for i in range(5)]


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("http://ex.com:99999/a", id="port-out-of-range"),
        pytest.param("http://ex.com:abc/a", id="port-not-a-number"),
        pytest.param("http://[ex.com/a", id="unclosed-ipv6-bracket"),
    ],
)
def test_normalise_does_not_raise_on_a_malformed_http_link(link: str) -> None:
    mentions = normalise_entries([entry(link=link)], source=source(), collected_at=COLLECTED_AT)
    # Kept under a non-http scheme, so that validation quarantines it visibly.
    assert [m.url for m in mentions] == [f"invalid:{link}"]


def test_a_feed_item_with_a_bad_port_does_not_stop_collect_sources() -> None:
    src = source()
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<link>https://ex.com/</link><description>d</description>"
        "<item><title>Bon</title><link>https://ex.com/ok</link></item>"
        "<item><title>Piège</title><link>http://ex.com:99999/a</link></item>"
        "</channel></rss>"
    ).encode()
    fetched = FetchResult(
        source=src.name,
        url=src.url,
        status="ok",
        started_at=COLLECTED_AT,
        duration_s=0.1,
        http_status=200,
        body=body,
        headers={"content-type": "application/rss+xml"},
    )
    mentions, outcomes = collect_sources(
        [src], [fetched], collected_at=COLLECTED_AT, max_entries=100
    )
    assert "Bon" in [m.title for m in mentions]
    assert len(outcomes) == 1


# --- merge_duplicates ------------------------------------------------------------------------


def test_merge_keeps_one_mention_per_id_with_the_longest_summary() -> None:
    base = normalise_one(entry())
    short = replace(base, summary="court", source="A")
    longest = replace(base, summary="le résumé le plus long", source="B")
    medium = replace(base, summary="moyen long", source="C")
    assert merge_duplicates([short, longest, medium]) == [replace(longest, seen_in=("A", "C"))]


def test_merge_keeps_the_first_copy_on_equal_summaries() -> None:
    base = normalise_one(entry())
    first = replace(base, source="A")
    second = replace(base, source="B")
    assert merge_duplicates([first, second]) == [replace(first, seen_in=("B",))]


def test_merge_keeps_every_place_once_even_when_merged_twice() -> None:
    base = normalise_one(entry())
    merged = merge_duplicates([replace(base, source="A"), replace(base, source="B")])
    again = merge_duplicates([*merged, replace(base, source="A"), replace(base, source="C")])
    assert [(m.source, m.seen_in) for m in again] == [("A", ("B", "C"))]


def test_merge_keeps_mentions_with_different_ids_in_order() -> None:
    items = [entry(link=f"https://ex.com/{i}") for i in range(3)]
    mentions = normalise_entries(items, source=source(), collected_at=COLLECTED_AT)
    assert merge_duplicates(mentions) == mentions


def test_merge_of_nothing_is_empty() -> None:
    assert merge_duplicates([]) == []
