"""Settings of the source kinds beyond RSS, and the search string derived from watch queries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.configs import MINIMAL_TOML, settings_from
from vigie.errors import ConfigError
from vigie.search import derived_search_query, positive_terms, split_or
from vigie.settings import SUPPORTED_KINDS, Source

WATCHES = """
[[watch]]
name = "direction"
query = '"Isabelle Gagnon" OR (directrice NOT recrutement) OR rappel*'
"""


def _with_source(block: str) -> str:
    return MINIMAL_TOML + WATCHES + "\n[[sources]]\n" + block


def test_positive_terms_keep_phrases_and_accents_and_leave_out_not() -> None:
    assert positive_terms('("laiterie boréale" OR boreale) NOT recrutement') == [
        '"laiterie boréale"',
        "boréale",  # the folded word takes the spelling it has elsewhere in the query
    ]
    assert positive_terms("rappel* AND (cheddar OR NOT brie)") == ["rappel", "cheddar"]


def test_derived_query_ors_every_watch_bounded() -> None:
    query = derived_search_query(
        [
            '("laiterie boréale" OR boreale) NOT recrutement',
            '"Isabelle Gagnon" OR boreale',
            "NOT ( broken",
        ]
    )
    assert query == '"laiterie boréale" OR boréale OR "isabelle gagnon"'
    many = derived_search_query([" OR ".join(f"mot{i}" for i in range(30))])
    assert many.count(" OR ") == 9  # ten terms at most
    assert len(derived_search_query(["x" * 300 + " OR " + "y" * 300])) <= 400


def test_split_or_respects_quotes_and_groups() -> None:
    assert split_or('"laiterie OR boréale" OR boreale OR (a OR b) OR (c d)') == [
        '"laiterie OR boréale"',
        "boreale",
        "a",
        "b",
        "c d",
    ]


def test_search_sources_get_the_derived_query(tmp_path: Path) -> None:
    text = (
        _with_source('name = "HN"\nkind = "hackernews"\n')
        + '\n[[sources]]\nname = "Reddit"\nkind = "reddit"\nquery = "boreale"\n'
        + '\n[[sources]]\nname = "Masto"\nkind = "mastodon"\ninstance = "piaille.fr"\n'
        + 'tag = "#LaiterieBoreale"\n'
    )
    settings = settings_from(tmp_path, text)
    hn, reddit, masto = settings.sources[1:]
    assert hn.query == (
        '"laiterie boréale" OR boréale OR "isabelle gagnon" OR directrice OR rappel'
    )
    assert hn.url == "https://hn.algolia.com" and hn.platform == "forum"
    assert reddit.query == "boreale"  # an explicit query wins
    # A tag alone: only the tag timeline, no derived search.
    assert (masto.query, masto.hashtag, masto.url) == (
        None,
        "LaiterieBoreale",
        "https://piaille.fr",
    )
    assert masto.platform == "social"
    assert settings.sources[0].query is None  # rss does not search


def test_every_kind_loads(tmp_path: Path) -> None:
    text = _with_source(
        'name = "JF"\nkind = "jsonfeed"\nurl = "https://bulletin.example/feed.json"\n'
        '\n[[sources]]\nname = "GN"\nkind = "news_search"\nlanguage = "fr"\nregion = "CA"\n'
        '\n[[sources]]\nname = "BS"\nkind = "bluesky"\nurl = "http://127.0.0.1:9/"\n'
        '\n[[sources]]\nname = "API"\nkind = "json_api"\nurl = "https://veille.example/api"\n'
        '[sources.mapping]\nitems = "data.items"\ntitle = "headline"\nurl = "link"\n'
        'author = "by.name"\n'
    )
    kinds = {s.kind: s for s in settings_from(tmp_path, text).sources}
    assert set(kinds) == {"rss", "jsonfeed", "news_search", "bluesky", "json_api"}
    assert kinds["news_search"].url == "https://news.google.com"
    assert kinds["bluesky"].url == "http://127.0.0.1:9/"  # the base URL is a config value
    mapping = kinds["json_api"].mapping
    assert mapping is not None and mapping.author == "by.name"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        pytest.param(
            'name = "GN"\nkind = "news_search"\nlanguage = "fr"\n',
            "sources[1]: language and region: are required for kind 'news_search'",
            id="news-search-without-region",
        ),
        pytest.param(
            'name = "GN"\nkind = "news_search"\nlanguage = "fr"\nregion = "Canada"\n',
            "sources[1].region",
            id="region-not-a-country-code",
        ),
        pytest.param(
            'name = "M"\nkind = "mastodon"\n',
            "sources[1]: instance: is required for kind 'mastodon'",
            id="mastodon-without-instance",
        ),
        pytest.param(
            'name = "M"\nkind = "mastodon"\ninstance = "piaille.fr"\nurl = "https://x.example"\n',
            "sources[1]: url: a mastodon source names its server with instance",
            id="mastodon-with-url",
        ),
        pytest.param(
            'name = "M"\nkind = "mastodon"\ninstance = "ftp://piaille.fr"\n',
            "sources[1].url: must be an http:// or https:// URL",
            id="mastodon-instance-not-http",
        ),
        pytest.param(
            'name = "R"\nkind = "rss"\nurl = "https://x.example/rss"\nquery = "boreale"\n',
            "sources[1]: query: is not read by kind 'rss'",
            id="query-on-rss",
        ),
        pytest.param(
            'name = "R"\nkind = "reddit"\ntag = "boreale"\n',
            "sources[1]: tag: is not read by kind 'reddit'",
            id="tag-on-reddit",
        ),
        pytest.param(
            'name = "A"\nkind = "json_api"\nurl = "https://x.example/api"\n',
            "sources[1]: mapping: is required for kind 'json_api'",
            id="json-api-without-mapping",
        ),
        pytest.param(
            'name = "A"\nkind = "json_api"\nurl = "https://x.example/api"\n'
            '[sources.mapping]\nitems = "data.items"\ntitle = "headline"\n',
            "sources[1].mapping.url: is required",
            id="mapping-without-url",
        ),
        pytest.param(
            'name = "A"\nkind = "json_api"\nurl = "https://x.example/api"\n'
            '[sources.mapping]\nitems = "data..items"\ntitle = "t"\nurl = "u"\n',
            "sources[1].mapping.items",
            id="mapping-path-with-empty-part",
        ),
        pytest.param(
            'name = "A"\nkind = "json_api"\nurl = "https://x.example/api"\n'
            '[sources.mapping]\nitems = "data"\ntitle = "t"\nurl = "u"\nlink = "l"\n',
            "sources[1].mapping.link: unknown key",
            id="mapping-unknown-field",
        ),
        pytest.param(
            'name = "J"\nkind = "jsonfeed"\n',
            "sources[1].url: is required",
            id="jsonfeed-without-url",
        ),
        pytest.param(
            'name = "H"\nkind = "hackernews"\nquery = ""\n',
            "sources[1].query",
            id="empty-query",
        ),
    ],
)
def test_invalid_kind_settings_name_the_key(tmp_path: Path, block: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, _with_source(block))
    assert message in str(caught.value)


def test_source_built_in_code_gets_the_derived_query(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    source = Source(name="HN", kind="hackernews")
    rebuilt = settings.model_validate(
        {**settings.model_dump(), "sources": [*settings.sources, source]}
    )
    assert rebuilt.sources[1].query == '"laiterie boréale" OR boréale'


def test_the_commented_examples_of_every_kind_load(tmp_path: Path) -> None:
    """vigie.example.toml's commented source blocks stay valid when uncommented."""
    text = (Path(__file__).parents[2] / "vigie.example.toml").read_text(encoding="utf-8")
    start, end = text.index("# Other kinds"), text.index("[email]")
    block = re.sub(
        r"^# (\[\[sources\]\]|\[sources\.mapping\].*|[a-z_]+ = .*)$",
        r"\1",
        text[start:end],
        flags=re.MULTILINE,
    )
    settings = settings_from(tmp_path, text[:start] + block + text[end:])
    assert {s.kind for s in settings.sources} == set(SUPPORTED_KINDS)
