"""Issue 8's source faults, all in one collection beside a good feed: each is bounded, recorded
with its reason, and the good feed is collected as if nothing happened. Issue 20's: headers sent
a byte at a time (over TLS too), and a thread stuck where no socket bounds it."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.collect.fetch import (
    HEADERS_DEADLINE,
    MAX_REASON_CHARS,
    STEP_MARGIN_S,
    collect_sources,
    fetch_source,
    fetch_sources,
)
from tasks.collect.health import check_source_health
from tests.configs import CELL_TOML, WATCH_TOML, settings_from
from tests.hostile import (
    dribbles,
    dribbles_headers,
    endless_body,
    hostile_server,
    never_answers,
    reason_phrase,
    resets_mid_body,
)
from vigie.localservers import FeedServer
from vigie.models import FetchResult, SourceState
from vigie.settings import Collection, Settings, Source
from warehouse.connection import open_warehouse
from warehouse.store import Store

ITEM = "<item><title>Rappel de fromages {n}</title><link>https://presse.example/{n}</link>"
ITEM += "<guid>https://presse.example/{n}</guid></item>"
GOOD = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Bon</title>'
    + "".join(ITEM.format(n=n) for n in range(3))
    + "</channel></rss>"
)
# The same three entries, each twice: ids doubled in one document.
DOUBLED = GOOD.replace("</channel>", "".join(ITEM.format(n=n) for n in range(3)) + "</channel>")
ERROR_PAGE = "<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"
BOUNDS = Collection(
    connect_timeout_s=1, read_timeout_s=1, deadline_s=3, retries=1, max_bytes=1_000_000
)
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_every_source_fault_is_bounded_recorded_and_the_good_feed_collected(
    feed_server: FeedServer,
) -> None:
    urls = {
        "good": feed_server.set("/good.xml", GOOD),
        "doubled": feed_server.set("/doubled.xml", DOUBLED),
        "error page": feed_server.set("/error.xml", ERROR_PAGE, content_type="text/html"),
        "429 storm": feed_server.set(
            "/busy.xml", "slow down", status=429, headers={"Retry-After": "1"}
        ),
        "loop": feed_server.set("/a.xml", "", status=302, location=feed_server.url("/b.xml")),
        "to a file": feed_server.set("/f.xml", "", status=301, location="file:///etc/passwd"),
    }
    feed_server.set("/b.xml", "", status=302, location=feed_server.url("/a.xml"))
    with ExitStack() as stack:
        for name, behaviour in [
            ("never answers", never_answers),
            ("dribbles", dribbles),
            ("endless", endless_body),
            ("reset", resets_mid_body),
        ]:
            urls[name] = stack.enter_context(hostile_server(behaviour))
        sources = [Source(name=name, url=url) for name, url in urls.items()]
        fetched: list[FetchResult] = []
        worker = threading.Thread(
            target=lambda: fetched.extend(fetch_sources(sources, {}, collection=BOUNDS))
        )
        worker.start()
        worker.join(timeout=120)  # a hang guard, far above the bounds (3 s a source)
        assert not worker.is_alive(), "a hostile source held the collection"
    mentions, outcomes = collect_sources(
        sources, fetched, collected_at=datetime.now(UTC), max_entries=100
    )
    reasons = {o.fetch.source: (o.status, o.error) for o in outcomes}
    assert reasons["good"] == ("ok", None)
    assert reasons["doubled"] == ("ok", None)
    assert reasons["never answers"] == ("error", "timed out")
    assert reasons["dribbles"] == ("error", "total deadline exceeded while reading the body")
    assert reasons["endless"] == ("error", "response larger than 1000000 bytes (size cap)")
    assert reasons["reset"][0] == "error"
    assert str(reasons["reset"][1]).startswith("body could not be read")
    assert reasons["error page"] == ("error", "not a feed: an HTML page")
    assert reasons["429 storm"] == ("error", "HTTP 429 Too Many Requests")
    assert reasons["loop"] == ("error", "too many redirects")
    assert reasons["to a file"] == ("error", "redirected to a non-HTTP URL (refused)")
    # The doubled ids are one mention each, with the good feed's copies merged in.
    assert sorted(m.url for m in mentions) == [f"https://presse.example/{n}" for n in range(3)]
    busy = [path for path, _ in feed_server.requests if path == "/busy.xml"]
    assert len(busy) == 2  # Retry-After honoured once, within the deadline, then recorded


def test_a_reason_phrase_with_terminal_escapes_is_recorded_inert() -> None:
    """The reason phrase is the server's own text, and it reaches terminals (`vigie status`),
    emails and logs: ESC, CR, C1 controls and bidi bytes are dropped, and it is bounded."""
    reason = b"Not Found\x1b[2J\x1b[31m\rFAKE OK \x9b31m \xe2\x80\xae gpj.exe" + b"x" * 500
    with hostile_server(reason_phrase(reason)) as url:
        result = fetch_source(Source(name="hostile", url=url), None, collection=BOUNDS)
    assert result.status == "error" and result.http_status == 404
    assert result.error is not None
    assert result.error.startswith("HTTP 404 Not Found[2J[31mFAKE OK 31m â® gpj.exe")
    assert len(result.error) <= len("HTTP 404 ") + MAX_REASON_CHARS
    assert all(ch.isprintable() for ch in result.error)


def test_a_server_dribbling_its_headers_holds_the_fetch_step_no_longer_than_the_deadline(
    feed_server: FeedServer,
) -> None:
    """Issue 20, item 1: each byte of the headers came within the read timeout, so the fetch
    waited as long as the server went on (240 s with deadline_s = 60). Now the deadline holds
    from connect to the last byte, headers included, and the fetch step ends with it."""
    bounds = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=2, retries=1)
    good = feed_server.set("/good.xml", GOOD)
    fetched: list[FetchResult] = []
    with hostile_server(dribbles_headers) as slow:
        sources = [
            Source(name="slow headers", url=slow),
            Source(name="slow headers again", url=slow.replace("feed.xml", "other.xml")),
            Source(name="good", url=good),
        ]
        began = time.monotonic()
        worker = threading.Thread(
            target=lambda: fetched.extend(fetch_sources(sources, {}, collection=bounds))
        )
        worker.start()
        worker.join(timeout=60)  # a hang guard: the server dribbles for 90 s
        elapsed = time.monotonic() - began
        assert not worker.is_alive(), "a server dribbling its headers held the fetch step"
    by_name = {result.source: result for result in fetched}
    assert by_name["good"].status == "ok"
    for name in ("slow headers", "slow headers again"):
        assert (by_name[name].status, by_name[name].error) == ("error", HEADERS_DEADLINE)
        assert by_name[name].duration_s < bounds.deadline_s + STEP_MARGIN_S
    # A generous bound drawn from the setting (the watchdog ends each fetch at its deadline).
    assert elapsed < bounds.deadline_s + STEP_MARGIN_S + 1


def test_a_source_stuck_where_no_socket_bounds_it_is_left_behind_at_its_deadline(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch step waits on its threads no longer than a source's deadline and its margin,
    whatever holds a thread. A name lookup is such a wait (no socket of ours to shut down): the
    system resolver cannot be made slow from a test, so its delay is injected for one name."""
    bounds = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=1, retries=0)
    resolve = socket.getaddrinfo
    released = threading.Event()

    def slow_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-dns.test":
            released.wait(60)  # a resolver that does not answer
            host = "127.0.0.1"
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_resolver)
    sources = [
        Source(name="slow name", url=f"http://slow-dns.test:{feed_server.port}/good.xml"),
        Source(name="good", url=feed_server.set("/good.xml", GOOD)),
    ]
    fetched: list[FetchResult] = []
    began = time.monotonic()
    worker = threading.Thread(
        target=lambda: fetched.extend(fetch_sources(sources, {}, collection=bounds))
    )
    worker.start()
    worker.join(timeout=30)  # a hang guard, far above the bound
    elapsed = time.monotonic() - began
    released.set()
    assert not worker.is_alive(), "a thread stuck in a name lookup held the fetch step"
    by_name = {result.source: result for result in fetched}
    assert by_name["good"].status == "ok"
    assert by_name["slow name"].status == "error"
    assert by_name["slow name"].error == (
        f"still fetching {bounds.deadline_s + STEP_MARGIN_S:g} s after it started "
        f"(deadline_s = {bounds.deadline_s:g}): abandoned"
    )
    assert elapsed < bounds.deadline_s + STEP_MARGIN_S + 1.5


def test_a_tls_server_dribbling_its_headers_is_cut_at_the_deadline(
    tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bound over TLS, where the socket read is the TLS socket's."""
    cert, key = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test's certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def dribbles_over_tls(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            dribbles_headers(tls)

    bounds = Collection(connect_timeout_s=1, read_timeout_s=1, deadline_s=2, retries=0)
    with hostile_server(dribbles_over_tls) as url:
        began = time.monotonic()
        result = fetch_source(
            Source(name="slow tls", url=url.replace("http:", "https:")), None, collection=bounds
        )
        elapsed = time.monotonic() - began
    assert (result.status, result.error) == ("error", HEADERS_DEADLINE)
    assert elapsed < bounds.deadline_s + 1.5


def _fetch_guarded(
    sources: list[Source], states: Mapping[str, SourceState], bounds: Collection
) -> tuple[list[FetchResult], float]:
    """`fetch_sources` in a thread with a hang guard far above any bound; its results and
    how long it took."""
    fetched: list[FetchResult] = []
    began = time.monotonic()
    worker = threading.Thread(
        target=lambda: fetched.extend(fetch_sources(sources, states, collection=bounds))
    )
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the fetch step outlived its deadline by far"
    return fetched, time.monotonic() - began


def _trickling_settings(tmp_path: Path, url: str, count: int) -> Settings:
    sources = "".join(
        f'\n[[sources]]\nname = "lente {n:02d}"\nurl = "{url.replace("feed.xml", f"{n}.xml")}"\n'
        for n in range(count)
    )
    return settings_from(
        tmp_path,
        WATCH_TOML
        + CELL_TOML
        + '\n[email]\nsender = "vigie@laiterie-boreale.example"\n'
        + sources
        + "\n[collection]\nconnect_timeout_s = 1\nread_timeout_s = 1\ndeadline_s = 2\n"
        + "retries = 0\nconcurrency = 4\nper_host = 4\n"
        + "\n[health]\nfailures_before_notice = 1\n",
    )


def test_forty_trickling_sources_end_the_step_at_its_deadline_and_the_deferred_go_first(
    tmp_path: Path,
) -> None:
    """Issue 20, item 1, the fetch step as a whole: 40 sources that each trickle for longer
    than `deadline_s`, 4 at a time, held the step 10 times `deadline_s`. It now ends within
    `deadline_s` and its margin; the sources it had no time for are deferred (recorded in
    `source_runs`, not failures, no health notice, their last poll left as it was) and start
    first next cycle, before any source fetched this cycle."""
    with hostile_server(dribbles) as slow:
        settings = _trickling_settings(tmp_path, slow, 40)
        bounds = settings.collection
        limit = bounds.deadline_s + STEP_MARGIN_S + 1.5  # generous: 2 cores, shared
        started: list[set[str]] = []
        deferred: list[set[str]] = []
        for cycle in range(2):
            now = NOW + timedelta(minutes=10 * cycle)
            with open_warehouse(settings.warehouse_path) as con:
                store = Store(con)
                fetched, elapsed = _fetch_guarded(settings.sources, store.source_states(), bounds)
                assert elapsed < limit, f"cycle {cycle}: the fetch step took {elapsed:.1f} s"
                _, outcomes = collect_sources(
                    settings.sources, fetched, collected_at=now, max_entries=10
                )
                store.load_cycle(f"c{cycle}", settings.sources, outcomes, [], [], now)
                notices = check_source_health(store, settings, {}, now=now)
                runs = dict(
                    con.execute(
                        "SELECT source, status FROM source_runs WHERE cycle_id = ?", [f"c{cycle}"]
                    ).fetchall()
                )
                failing = {
                    name
                    for name, failures, last_run in con.execute(
                        "SELECT name, consecutive_failures, last_run_at FROM sources"
                    ).fetchall()
                    if failures or last_run is not None
                }
            by_name = {r.source: r for r in fetched}
            assert len(by_name) == 40 and set(runs) == set(by_name)  # every one recorded
            not_started = {
                name
                for name, r in by_name.items()
                if r.status == "deferred" and (r.error or "").startswith("not started before")
            }
            assert len(not_started) >= 40 - 2 * bounds.concurrency, by_name
            assert {r.status for r in by_name.values()} <= {"error", "deferred"}
            cycle_deferred = {n for n, r in by_name.items() if r.status == "deferred"}
            assert {n for n, s in runs.items() if s == "deferred"} == cycle_deferred
            # A deferred source is no failure: no failure count, no last poll, no notice.
            failed = set(by_name) - cycle_deferred
            assert failing == failed | (started[0] - deferred[0] if cycle else set())
            assert {line.split(":")[0] for line in notices} == failed
            started.append(set(by_name) - not_started)
            deferred.append(cycle_deferred)
    # The second cycle started none of the sources the first one fetched to their deadline:
    # it began with those the first had no time for.
    assert started[1] and not started[1] & (started[0] - deferred[0])
    assert started[1] <= deferred[0]


def test_a_source_stuck_where_no_socket_bounds_it_is_deferred_at_the_steps_deadline(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that started late in the step (one worker, a slow feed before it) and is stuck
    in a name lookup is left behind at the step's deadline and its margin, before its own: it
    had not had its time, so it is deferred, not failed."""
    bounds = Collection(
        connect_timeout_s=1, read_timeout_s=1, deadline_s=1, retries=0, concurrency=1
    )
    resolve = socket.getaddrinfo
    released = threading.Event()

    def slow_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-dns.test":
            released.wait(60)
            host = "127.0.0.1"
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_resolver)
    sources = [
        Source(name="slow feed", url=feed_server.set("/slow.xml", GOOD, delay_s=0.5)),
        Source(name="slow name", url=f"http://slow-dns.test:{feed_server.port}/good.xml"),
    ]
    try:
        fetched, elapsed = _fetch_guarded(sources, {}, bounds)
    finally:
        released.set()
    by_name = {result.source: result for result in fetched}
    assert by_name["slow feed"].status == "ok"
    assert by_name["slow name"].status == "deferred"
    assert (by_name["slow name"].error or "").startswith(
        "still fetching at the fetch step's deadline"
    )
    assert elapsed < bounds.deadline_s + STEP_MARGIN_S + 1.5
