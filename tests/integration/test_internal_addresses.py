"""Issue 20, item 5: a source cannot lead Vigie to an internal service. A redirect (or an API's
next page redirected) to a loopback, private, link-local, multicast or reserved address is
refused unless the operator named that host: the source's own URL, or `collection.allow_hosts`.
The check is made on the address actually connected to (after DNS), for every request,
kept-alive connections included. 127.0.0.2 stands for another machine: nothing leaves loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.collect.fetch import HttpClient, fetch_any_source, fetch_source
from vigie.localservers import FeedServer
from vigie.settings import Collection, JsonMapping, Source

RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Interne</title>'
    "<item><title>Secret interne</title><link>https://intranet.example/1</link></item>"
    "</channel></rss>"
)
FAST = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=5, retries=0)
JSON = "application/json; charset=utf-8"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "sources"
MAPPING = JsonMapping(
    items="data.items",
    id="id",
    title="headline",
    url="link",
    summary="body",
    published_at="published",
    next="paging.next",
)


def _loopback_2_available() -> bool:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def other_machine() -> Iterator[FeedServer]:
    """A feed server on 127.0.0.2: an internal service the sources were not configured with."""
    if not _loopback_2_available():
        pytest.skip("127.0.0.2 cannot be bound on this machine")
    with FeedServer(host="127.0.0.2") as server:
        yield server


def test_a_redirect_to_another_internal_address_is_refused(
    feed_server: FeedServer, other_machine: FeedServer
) -> None:
    target = other_machine.set("/secret.xml", RSS)
    url = feed_server.set("/feed.xml", "", status=302, location=target)
    result = fetch_source(Source(name="moved", url=url), None, collection=FAST)
    assert result.status == "error" and result.body is None
    assert result.error == (
        "refused: 127.0.0.2 is at an internal address (127.0.0.2) that the configuration "
        "does not name (collection.allow_hosts)"
    )
    assert other_machine.requests == []  # not a byte of the request reached it


def test_a_redirect_to_a_host_in_allow_hosts_is_followed(
    feed_server: FeedServer, other_machine: FeedServer
) -> None:
    target = other_machine.set("/secret.xml", RSS)
    url = feed_server.set("/feed.xml", "", status=302, location=target)
    allowed = FAST.model_copy(update={"allow_hosts": ("127.0.0.2",)})
    result = fetch_source(Source(name="moved", url=url), None, collection=allowed)
    assert result.status == "ok" and result.final_url == target
    assert result.body is not None and b"Secret interne" in result.body
    # A network names its addresses too.
    networks = FAST.model_copy(update={"allow_hosts": ("127.0.0.0/30",)})
    assert fetch_source(Source(name="moved", url=url), None, collection=networks).status == "ok"


def test_a_name_is_judged_by_the_address_it_resolves_to(
    feed_server: FeedServer, other_machine: FeedServer
) -> None:
    """`localhost` is a name: what counts is where it leads (127.0.0.1), after DNS."""
    feed_server.set("/admin.xml", RSS)
    url = other_machine.set(
        "/feed.xml", "", status=302, location=f"http://localhost:{feed_server.port}/admin.xml"
    )
    result = fetch_source(Source(name="moved", url=url), None, collection=FAST)
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith("refused: localhost is at an internal address (")
    assert feed_server.requests == []


def test_a_kept_alive_connection_is_checked_again_for_each_source(
    feed_server: FeedServer, other_machine: FeedServer
) -> None:
    """The first source, on 127.0.0.1, leaves a connection in the pool; the second, on
    127.0.0.2, redirects to 127.0.0.1: the pooled connection is not a way in."""
    admin = feed_server.set("/admin.xml", RSS)
    url = other_machine.set("/feed.xml", "", status=302, location=admin)
    with HttpClient(per_host=2) as client:
        first = fetch_source(Source(name="local", url=admin), None, collection=FAST, client=client)
        assert first.status == "ok"  # a source's own host is allowed, even internal
        second = fetch_source(Source(name="moved", url=url), None, collection=FAST, client=client)
    assert second.status == "error"
    assert second.error is not None and "internal address (127.0.0.1)" in second.error
    assert len(feed_server.requests) == 1


def test_a_next_page_redirected_to_an_internal_address_is_refused(
    feed_server: FeedServer, other_machine: FeedServer
) -> None:
    feed_server.set(
        "/api/mentions", (FIXTURES / "json_api" / "items.json").read_bytes(), content_type=JSON
    )
    hidden = {"data": {"items": [{"id": "x", "headline": "Secret", "link": "https://i.example/x"}]}}
    target = other_machine.set("/internal.json", json.dumps(hidden), content_type=JSON)
    feed_server.set("/api/mentions", "", status=302, location=target, query={"page": "2"})
    source = Source(
        name="api", kind="json_api", url=feed_server.url("/api/mentions"), mapping=MAPPING
    )
    result = fetch_any_source(source, None, collection=FAST)
    assert result.status == "ok" and result.entries is not None
    assert "x" not in {entry.guid for entry in result.entries}  # page 1 kept, nothing more
    assert result.error is not None and "internal address (127.0.0.2)" in result.error
    assert other_machine.requests == []


def test_the_configured_host_by_another_of_its_names_is_allowed(feed_server: FeedServer) -> None:
    """A source on `localhost` redirected to 127.0.0.1, where `localhost` was found: the same
    machine the operator named."""
    target = feed_server.set("/new.xml", RSS)
    feed_server.set("/old.xml", "", status=301, location=target)
    url = f"http://localhost:{feed_server.port}/old.xml"
    result = fetch_source(Source(name="local", url=url), None, collection=FAST)
    assert result.status == "ok" and result.final_url == target
