"""Dedup across outlets by normalised title, through a real collection (feeds served by the
FeedServer on 127.0.0.1, fetched, parsed, matched, clustered into stories) into a real DuckDB
over two cycles: the same headline from another outlet within a week is one more sighting of
the stored mention; ten days later, or a short generic title, it is a mention of its own; and
the stories keep grouping copies on top."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.collect.fetch import collect_matching, fetch_sources
from tasks.enrich.stories import assign_stories
from tasks.load import STORY_MEMORY
from tests.configs import WATCH_TOML, settings_from
from vigie.localservers import FeedServer
from vigie.models import Mention
from vigie.scenario import Item, rss_document
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import LoadResult, Store

RECALL = "Laiterie Boréale rappelle trois fromages contaminés à la listeria"
EXPLAINS = "Laiterie Boréale : la direction s'explique sur le rappel"
GENERIC = "Communiqué Laiterie Boréale"
TOML = (
    WATCH_TOML
    + """
[[sources]]
name = "Le Devoir"
url = "{base}/devoir.xml"

[[sources]]
name = "La Presse"
url = "{base}/presse.xml"
tier = 1

[[sources]]
name = "Agrégateur"
url = "{base}/agregateur.xml"

[email]
sender = "vigie@laiterie-boreale.example"
"""
)


def _publish(server: FeedServer, path: str, title: str, items: list[Item], at: datetime) -> None:
    server.set(path, rss_document(title, items, at))


def _cycle(settings: Settings, now: datetime) -> tuple[LoadResult, list[Mention]]:
    """One collection as the watch cycle runs it: fetch, parse and match, stories, load."""
    path = settings.warehouse_path
    with open_warehouse(path) as con:
        states = Store(con).source_states()
    fetched = fetch_sources(settings.sources, states, collection=settings.collection)
    collected = collect_matching(
        settings.sources, fetched, settings.watch, collected_at=now, max_entries=1000
    )
    with open_warehouse(path) as con:
        store = Store(con)
        recent = store.recent_story_signatures(now - STORY_MEMORY)
        mentions, signatures = assign_stories(collected.matched, recent)
        loaded = store.load_cycle(
            f"c-{now:%H%M%S%f}", settings.sources, collected.outcomes, mentions, [], now, signatures
        )
    return loaded, mentions


def _rows(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    with open_warehouse(settings.warehouse_path) as con:
        return con.execute(sql, list(params)).fetchall()


def test_same_headline_from_another_outlet_within_a_week_is_one_more_sighting(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = settings_from(tmp_path, TOML.replace("{base}", feed_server.url("")))
    now = datetime.now(UTC)
    devoir = [
        Item(
            RECALL,
            "https://www.ledevoir.com/economie/812345?utm_source=rss",
            "",
            timedelta(hours=2),
        ),
        Item(EXPLAINS, "https://www.ledevoir.com/economie/800001", "", timedelta(days=10)),
        Item(GENERIC, "https://www.ledevoir.com/communique/1", "", timedelta(hours=1)),
    ]
    quiet = [
        Item(
            "Hockey : victoire en prolongation",
            "https://www.lapresse.ca/sports/1",
            "",
            timedelta(hours=3),
        )
    ]
    # A first cycle where nothing matches: what a source brings first is backfill, not news.
    for path, name in (("/devoir.xml", "Le Devoir"), ("/presse.xml", "La Presse")):
        _publish(feed_server, path, name, quiet, now - timedelta(hours=1))
    _publish(feed_server, "/agregateur.xml", "Agrégateur", quiet, now)
    _cycle(settings, now - timedelta(hours=1))
    _publish(feed_server, "/devoir.xml", "Le Devoir", devoir, now)
    first, _ = _cycle(settings, now)
    assert first.new_by_source == {"Le Devoir": 3}

    # An hour later La Presse carries the recall (its own link, its name after the title), the
    # explanation ten days after Le Devoir's, and its own short communiqué; an aggregator links
    # to Le Devoir's recall on its mobile site.
    later = now + timedelta(hours=1)
    presse = [
        Item(
            f"{RECALL} - La Presse",
            "https://www.lapresse.ca/affaires/rappel",
            "",
            timedelta(hours=1),
        ),
        Item(EXPLAINS, "https://www.lapresse.ca/affaires/explications", "", timedelta(hours=1)),
        Item(GENERIC, "https://www.lapresse.ca/communique/7", "", timedelta(hours=1)),
    ]
    _publish(feed_server, "/presse.xml", "La Presse", presse, later)
    mobile = [
        Item(
            "Rappel chez Laiterie Boréale",
            "https://m.ledevoir.com/economie/812345",
            "",
            timedelta(hours=1),
        )
    ]
    _publish(feed_server, "/agregateur.xml", "Agrégateur", mobile, later)
    second, mentions = _cycle(settings, later)
    assert second.new_by_source == {"La Presse": 2}

    assert _rows(settings, "SELECT count(*) FROM mentions") == [(5,)]
    recall_places = _rows(
        settings,
        "SELECT s.source FROM mention_sightings s JOIN mentions m USING (mention_id) "
        "WHERE m.title = ? ORDER BY s.source",
        RECALL,
    )
    assert recall_places == [("Agrégateur",), ("La Presse",), ("Le Devoir",)]
    titles = _rows(settings, "SELECT title, count(*) FROM mentions GROUP BY title ORDER BY title")
    assert titles == sorted([(GENERIC, 2), (EXPLAINS, 2), (RECALL, 1)])
    # The stories keep working on top: both explanations, ten days apart, are one story.
    stories = _rows(settings, "SELECT mentions, sources FROM stories WHERE title = ?", EXPLAINS)
    assert stories == [(2, 2)]

    # Detection reads the recall as carried by La Presse, the major outlet among its sightings.
    with open_warehouse(settings.warehouse_path) as con:
        window, _ = Store(con).window_mentions(
            "marque", start=now - timedelta(days=1), end=later + timedelta(hours=1)
        )
    assert [(m.source, m.tier) for m in window if m.title == RECALL] == [("La Presse", 1)]

    # Loading the same batch again changes nothing.
    with open_warehouse(settings.warehouse_path) as con:
        again = Store(con).load_cycle("again", settings.sources, [], mentions, [], later)
    assert again.new_mentions == 0
    assert _rows(settings, "SELECT count(*) FROM mentions") == [(5,)]
    assert _rows(settings, "SELECT count(*) FROM mention_sightings") == [(7,)]


def test_retention_drops_the_title_keys_with_the_titles(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    settings = settings_from(tmp_path, TOML.replace("{base}", feed_server.url("")))
    now = datetime.now(UTC)
    for path, name in (("/devoir.xml", "Le Devoir"), ("/presse.xml", "La Presse")):
        item = Item(RECALL, f"https://{name[3:].lower()}.example/rappel", "", timedelta(days=40))
        _publish(feed_server, path, name, [item], now)
    _publish(feed_server, "/agregateur.xml", "Agrégateur", [], now)
    _cycle(settings, now)
    assert _rows(settings, "SELECT count(*) FROM mention_titles") == [(1,)]
    with open_warehouse(settings.warehouse_path) as con:
        Store(con).apply_retention(now - timedelta(days=60))
    assert _rows(settings, "SELECT count(*) FROM mention_titles") == [(1,)]  # still within
    with open_warehouse(settings.warehouse_path) as con:
        Store(con).apply_retention(now - timedelta(days=30))
    assert _rows(settings, "SELECT count(*) FROM mention_titles") == [(0,)]
    assert _rows(settings, "SELECT count(*) FROM mentions") == [(1,)]  # ids are kept
