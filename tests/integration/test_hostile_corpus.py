"""Issue 8's hostile-input corpus, from a feed served over HTTP to what people read: the alert
email (HTML and subject), an incident's situation report and final report (emails and UI
markdown) and the Prefect UI's top-stories table (markdown), through the real
fetch, parsing, matching and warehouse. Nothing executes, nothing breaks a header, nothing is
unbounded, and hostile documents are refused or recorded, never a crash."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from tasks.collect.fetch import collect_matching, fetch_sources
from tasks.collect.normalise import MAX_TITLE_CHARS
from tasks.notify.emails import MAX_SUBJECT_CHARS, render_alert_email
from tasks.notify.incident import (
    IncidentPlan,
    begin_incident,
    build_report,
    build_sitrep,
    render_report,
    render_sitrep,
)
from tasks.publish.report import top_story_rows
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import VolumeSignal
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore

NOW = datetime.now(UTC).replace(microsecond=0)
BRAND = "Laiterie Boréale"
# Each title names the brand, so the watch keeps it and it reaches the email and the UI.
TITLES = [
    f"<script>alert(1)</script> {BRAND} rappel",
    f"{BRAND} rappel\r\nBcc: intrus@evil.example\r\nX-Evil: 1",
    f"{BRAND} \u202egnp.exe\u202c rappel \u200b\u2066caché\u2069",
    f"{BRAND} [clic](javascript:alert(1)) ![pixel](https://tracker.example/p.png) | a | b |",
    f"{BRAND} <img src=x onerror=alert(1)> <a href='javascript:alert(2)'>lien</a>",
    f"{BRAND} " + "très long " * 10_000,
]
LINKS = [
    "javascript:alert(1)",
    "https://presse.example/1",
    "data:text/html,<script>alert(1)</script>",
    "https://presse.example/4?utm_source=x",
    "file:///etc/passwd",
    "https://presse.example/6",
]
BAD_ASCII = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class _Elements(HTMLParser):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self.unsafe: list[str] = []
        self.allowed = allowed  # links the configuration makes (mailto: of the cell)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # An image attached to the message itself (a chart, `cid:`) loads nothing.
        attached = tag == "img" and str(dict(attrs).get("src")).startswith("cid:")
        if tag in ("script", "img", "iframe", "object", "embed", "style") and not attached:
            self.unsafe.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.unsafe.append(f"{tag} {name}")
            link = value or ""
            safe = link.startswith(("https://", *self.allowed)) or (attached and name == "src")
            if name in ("href", "src") and not safe:
                self.unsafe.append(f"{tag} {name}={value}")


def _unsafe(markup: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """What in this HTML could run, load or mislead: active elements, event handlers, links
    that are not https (or start with one of `allowed`), control and bidirectional characters."""
    elements = _Elements(allowed)
    elements.feed(markup)
    return elements.unsafe + [repr(ch) for ch in BAD_ASCII.findall(html.unescape(markup))]


def _rss(items: list[tuple[str, str]], extra: str = "") -> str:
    body = "".join(
        f"<item><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        f"<description>{html.escape(title)}</description>"
        f"<pubDate>{(NOW - timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        f"</pubDate></item>"
        for n, (title, link) in enumerate(items)
    )
    head = f'<?xml version="1.0" encoding="utf-8"?>{extra}<rss version="2.0">'
    return f"{head}<channel>{body}</channel></rss>"


def test_a_hostile_corpus_is_inert_in_the_alert_email_the_incident_reports_and_the_ui(
    feed_server: FeedServer, tmp_path: object
) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    laughs = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]>'
    )
    urls = {
        "corpus": feed_server.set("/corpus.xml", _rss(list(zip(TITLES, LINKS, strict=True)))),
        "laughs": feed_server.set(
            "/laughs.xml", _rss([(f"{BRAND} &lol3;", "https://presse.example/l")], laughs)
        ),
        "bad utf-8": feed_server.set(
            "/bad.xml",
            _rss([(f"{BRAND} rappel", "https://presse.example/u")])
            .encode()
            .replace(b"rappel", b"rap\xff\xfepel"),
        ),
        "huge": feed_server.set(
            "/huge.xml",
            _rss([(f"{BRAND} {n}", f"https://presse.example/h/{n}") for n in range(10_000)]),
        ),
    }
    # The corpus comes from a major outlet (tier 1), so it leads the stories people read first.
    sources = "".join(
        f'[[sources]]\nname = "{name}"\nurl = "{url}"\ntier = {1 if name == "corpus" else 2}\n'
        for name, url in urls.items()
    )
    toml = MINIMAL_TOML[: MINIMAL_TOML.index("[[sources]]")] + sources
    toml += MINIMAL_TOML[MINIMAL_TOML.index("[email]") :]
    toml = toml.replace(
        "query = '(\"laiterie boréale\" OR boreale) NOT recrutement'", "query = 'boreale'"
    )
    settings = settings_from(folder, toml + CELL_TOML + "\n[collection]\nmax_entries = 500\n")

    fetched = fetch_sources(settings.sources, {}, collection=settings.collection)
    collected = collect_matching(
        settings.sources, fetched, settings.watch, collected_at=NOW, max_entries=500
    )
    outcomes = {o.fetch.source: (o.status, o.items, o.error) for o in collected.outcomes}
    assert outcomes["laughs"][0] == "error" and "entities" in str(outcomes["laughs"][2])
    assert outcomes["bad utf-8"][0] in ("ok", "error")  # read or refused, never a crash
    assert outcomes["huge"][:2] == ("ok", 500)  # capped at max_entries
    assert outcomes["corpus"][:2] == ("ok", len(TITLES))
    assert all(len(m.title) <= MAX_TITLE_CHARS for m in collected.matched)
    assert all(BAD_ASCII.search(m.title + m.summary) is None for m in collected.matched)

    with open_warehouse(folder / "wh.duckdb") as con:
        store = IncidentStore(con)
        store.begin_cycle("c1", NOW, None)
        store.load_cycle("c1", settings.sources, collected.outcomes, collected.matched, [], NOW)
        window = {"start": NOW - timedelta(days=1), "end": NOW + timedelta(minutes=1)}
        stories = store.top_stories(**window, limit=10_000)
        top = store.top_mentions("marque", **window, limit=10_000)
        # An incident named by someone in a hurry, or by a crafted trigger, over the corpus.
        started = NOW - timedelta(hours=1)
        plan = IncidentPlan.of(
            started, cadence_minutes=5, duration_hours=2, sitrep_every_minutes=60
        )
        incident, _ = begin_incident(store, TITLES[1], {"extra_queries": [TITLES[0]]}, plan, "r1")
        sitrep = build_sitrep(
            store,
            settings,
            incident,
            number=1,
            start=started,
            end=NOW + timedelta(minutes=1),
            extra_topics=[],
        )
        report = build_report(
            store,
            settings,
            incident,
            status="ended",
            ended_at=NOW + timedelta(minutes=1),
            extra_topics=[],
            interval=timedelta(hours=1),
        )
    corpus = [s for s in stories if s["source"] == "corpus"]
    corpus_top = [m for m in top if m["source"] == "corpus"]
    assert len(corpus) >= 5 and len(corpus_top) >= 5  # hostile titles reach what people read

    subject, body = render_alert_email(
        settings,
        alert_id="al-corpus",
        signal=VolumeSignal("marque", NOW - timedelta(hours=1), NOW, 40, 2.0, 1.0, 0.99, 9.0, True),
        level="alerte",
        top_mentions=corpus_top,
        run_url="javascript:alert(3)",
    )
    assert "\r" not in subject and "\n" not in subject and len(subject) <= MAX_SUBJECT_CHARS
    assert BAD_ASCII.search(subject) is None
    cell = tuple(f"mailto:{m.email}" for m in settings.cell.members)
    assert _unsafe(body, cell) == []

    rendered = (
        MarkdownIt("commonmark")
        .enable("table")
        .render("\n".join(str(value) for row in top_story_rows(corpus) for value in row.values()))
    )
    assert _unsafe(rendered) == []

    # The incident's situation report and final report: emails, and markdown for the UI.
    assert {s.story_id for s in sitrep.stories} & {s["story_id"] for s in corpus}
    for message, markdown in (
        render_sitrep(sitrep, settings, ["cell@example.org"]),
        render_report(report, settings, ["cell@example.org"]),
    ):
        assert "\r" not in message.subject and "\n" not in message.subject
        assert len(message.subject) <= MAX_SUBJECT_CHARS and not BAD_ASCII.search(message.subject)
        assert _unsafe(message.html, cell) == []
        assert BAD_ASCII.search(message.text) is None
        assert _unsafe(MarkdownIt("commonmark").enable("table").render(markdown)) == []
