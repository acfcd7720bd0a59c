"""`warehouse.mention_texts` on a real DuckDB file with the real migrations: what `vigie query
test` reads, newest first, without drills or texts erased by retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse.connection import open_warehouse
from warehouse.mention_texts import stored_mention_count, stored_texts
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _mention(store: Store, mention_id: str, source: str, title: str, hours_ago: int) -> None:
    when = NOW - timedelta(hours=hours_ago)
    store.con.execute(
        "INSERT INTO mentions (mention_id, source, platform, tier, url, title, summary, author, "
        "published_at, collected_at, language, story_id, topics, cycle_id) "
        "VALUES (?, ?, 'news', 1, ?, ?, '', NULL, ?, ?, 'fr', ?, ['marque'], 'c1')",
        [mention_id, source, f"https://x.example/{mention_id}", title, when, when, mention_id],
    )


def test_stored_texts_are_the_newest_real_mentions_with_text(tmp_path: Path) -> None:
    with open_warehouse(tmp_path / "vigie.duckdb") as con:
        store = Store(con)
        con.execute(
            "INSERT INTO sources (name, kind, url, platform, tier, drill) VALUES "
            "('Exercice', 'rss', 'http://127.0.0.1/d', 'news', 1, true), "
            "('Quotidien', 'rss', 'http://127.0.0.1/q', 'news', 1, false)"
        )
        _mention(store, "a", "Quotidien", "Boréale : rappel", 1)
        _mention(store, "b", "Quotidien", "Boréale agrandit son usine", 2)
        _mention(store, "c", "Quotidien", "", 3)  # erased by retention: nothing to match
        _mention(store, "d", "Exercice", "Boréale : exercice de crise", 1)  # a drill
        _mention(store, "e", "Forum", "Boréale au forum", 4)  # a source no longer configured
        _mention(store, "f", "Quotidien", "Boréale il y a deux jours", 48)
        texts, total = stored_texts(store, since=NOW - timedelta(hours=24), limit=2)
        assert [t.mention_id for t in texts] == ["a", "b"]
        assert total == 3  # a, b and e: the limit bounds the list, not the count
        assert texts[0].topics == ("marque",)
        assert texts[0].published_at == NOW - timedelta(hours=1)
        assert stored_mention_count(store) == 6
