"""A source that needs a token: read from the variable its `token_env` names when the source
is fetched, sent only to the origin of its URL (a redirect elsewhere never carries it), and
never recorded, even when a hostile server echoes it back. Real HTTP servers on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tasks.collect.fetch import fetch_any_source, fetch_source
from tests.hostile import hostile_server, reason_phrase
from vigie.localservers import FeedServer
from vigie.models import FetchResult
from vigie.settings import Collection, JsonMapping, Source

TOKEN = "tok-9f2K.x_vigie-api~token"
FAST = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=5, retries=0)
RSS = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
<item><title>Laiterie Boréale : un rappel</title><link>https://q.example/a/1</link></item>
</channel></rss>"""


@pytest.fixture(autouse=True)
def token_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_TEST_TOKEN", TOKEN)


def _source(url: str, **token: str) -> Source:
    return Source(name="API", url=url, token_env="VIGIE_TEST_TOKEN", **token)  # type: ignore[arg-type]


def _recorded(result: FetchResult) -> str:
    return " ".join(str(v) for v in (result.error, result.final_url, result.url))


def test_the_token_goes_as_a_bearer_header_by_default(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", RSS)
    result = fetch_source(_source(url), None, collection=FAST)
    assert result.status == "ok"
    assert feed_server.requests[-1][1]["Authorization"] == f"Bearer {TOKEN}"


def test_the_token_goes_raw_in_the_header_named(feed_server: FeedServer) -> None:
    url = feed_server.set("/feed.xml", RSS)
    result = fetch_source(_source(url, token_header="X-Api-Key"), None, collection=FAST)
    assert result.status == "ok"
    headers = feed_server.requests[-1][1]
    assert headers["X-Api-Key"] == TOKEN
    assert "Authorization" not in headers


def test_the_token_goes_as_the_query_parameter_named_the_query_kept_as_it_was(
    feed_server: FeedServer,
) -> None:
    url = feed_server.set("/search", RSS, query={"q": "Laiterie Boréale"})
    result = fetch_source(_source(url, token_param="apiKey"), None, collection=FAST)
    assert result.status == "ok"
    path, headers = feed_server.requests[-1]
    assert path.startswith(urlsplit(url).path + "?" + urlsplit(url).query + "&")
    assert parse_qs(urlsplit(path).query)["apiKey"] == [TOKEN]
    assert "Authorization" not in headers
    assert TOKEN not in _recorded(result)  # the URL recorded is the source's own


def test_a_redirect_to_another_origin_never_carries_the_token(feed_server: FeedServer) -> None:
    """Same host, another port: another origin. The redirect is followed without the token;
    a redirect at the source's own origin keeps it."""
    with FeedServer() as elsewhere:
        target = elsewhere.set("/feed.xml", RSS)
        feed_server.set("/here", b"", status=302, location="/moved")
        feed_server.set("/moved", b"", status=302, location=target)
        for token in ({}, {"token_header": "X-Api-Key"}, {"token_param": "key"}):
            result = fetch_source(_source(feed_server.url("/here"), **token), None, collection=FAST)
            assert result.status == "ok", result.error
            moved_path, moved_headers = feed_server.requests[-1]
            assert moved_path.startswith("/moved")
            assert TOKEN in moved_path + str(moved_headers.values())
            path, headers = elsewhere.requests[-1]
            assert TOKEN not in path + " ".join(headers.values())
            assert not {"Authorization", "X-Api-Key"} & set(headers)


def test_a_token_a_server_echoes_is_never_recorded(feed_server: FeedServer) -> None:
    """In a Location (the final URL), or in an HTTP reason phrase (the error)."""
    feed_server.set("/echo", b"", status=302, location=f"/feed.xml?seen={TOKEN}")
    feed_server.set("/feed.xml", RSS)
    echoed = fetch_source(_source(feed_server.url("/echo")), None, collection=FAST)
    assert echoed.status == "ok"
    assert echoed.final_url is not None and echoed.final_url.endswith("seen=***")
    with hostile_server(reason_phrase(f"Refused {TOKEN} for you".encode())) as url:
        refused = fetch_source(_source(url), None, collection=FAST)
    assert refused.status == "error"
    assert refused.error == "HTTP 404 Refused *** for you"
    assert TOKEN not in _recorded(echoed) + _recorded(refused)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "the token variable VIGIE_TEST_TOKEN is not set"),
        (
            "abc\r\nX-Injected: 1",
            "the token in VIGIE_TEST_TOKEN holds spaces, control or non-ASCII characters "
            "(a request cannot carry them)",
        ),
        (
            "jeton-é",
            "the token in VIGIE_TEST_TOKEN holds spaces, control or non-ASCII characters "
            "(a request cannot carry them)",
        ),
    ],
    ids=["unset", "crlf", "non-ascii"],
)
def test_a_missing_or_unusable_token_fails_the_source_alone_without_a_request(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, value: str, reason: str
) -> None:
    monkeypatch.setenv("VIGIE_TEST_TOKEN", value)
    url = feed_server.set("/feed.xml", RSS)
    result = fetch_source(_source(url), None, collection=FAST)
    assert (result.status, result.error) == ("error", reason)
    assert feed_server.requests == []


def test_every_page_of_an_api_source_carries_the_token(feed_server: FeedServer) -> None:
    """A `json_api` read page after page (its next pages are always at its own origin)."""
    second = feed_server.set(
        "/page2",
        '{"items": [{"t": "Laiterie Boréale 2", "u": "https://q.example/2"}]}',
        content_type="application/json",
    )
    first = feed_server.set(
        "/page1",
        '{"items": [{"t": "Laiterie Boréale 1", "u": "https://q.example/1"}], "next": "'
        + second
        + '"}',
        content_type="application/json",
    )
    source = Source(
        name="API",
        kind="json_api",
        url=first,
        token_env="VIGIE_TEST_TOKEN",
        token_param="api_key",
        mapping=JsonMapping(items="items", title="t", url="u", next="next"),
    )
    result = fetch_any_source(source, None, collection=FAST)
    assert result.status == "ok", result.error
    assert [e.title for e in result.entries or []] == ["Laiterie Boréale 1", "Laiterie Boréale 2"]
    paths = [path for path, _ in feed_server.requests]
    assert [urlsplit(p).path for p in paths] == ["/page1", "/page2"]
    assert all(parse_qs(urlsplit(p).query)["api_key"] == [TOKEN] for p in paths)
    assert TOKEN not in _recorded(result)
