"""The stored mentions' texts, as `vigie query test` reads them to try a query on.

Read only. Mentions of drill sources (rehearsals) are left out, and so are those whose text the
retention policy erased (nothing left to match).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from warehouse.store import DRILL_SOURCES, Store

_TESTABLE = (
    "published_at >= ? AND (title <> '' OR summary <> '') "
    "AND source NOT IN (SELECT name FROM sources WHERE coalesce(drill, false))"
)


@dataclass(frozen=True, slots=True)
class StoredText:
    """What a query is matched against (title, summary, author), and what shows a mention."""

    mention_id: str
    source: str
    published_at: datetime
    title: str
    summary: str
    author: str | None
    topics: tuple[str, ...]
    url: str


def stored_mention_count(store: Store, *, drills: bool = True) -> int:
    """The mentions the warehouse holds, a drill's too unless `drills` is False: zero means
    nothing was collected."""
    where = "" if drills else f" WHERE source NOT IN {DRILL_SOURCES}"
    return int(store.con.execute(f"SELECT count(*) FROM mentions{where}").fetchall()[0][0])


def stored_texts(store: Store, *, since: datetime, limit: int) -> tuple[list[StoredText], int]:
    """The newest `limit` testable mentions published since `since`, newest first, and how many
    testable mentions that window holds in all."""
    total = int(
        store.con.execute(f"SELECT count(*) FROM mentions WHERE {_TESTABLE}", [since]).fetchall()[
            0
        ][0]
    )
    rows = store.con.execute(
        "SELECT mention_id, source, published_at, title, summary, author, topics, url "
        f"FROM mentions WHERE {_TESTABLE} ORDER BY published_at DESC, mention_id LIMIT ?",
        [since, limit],
    ).fetchall()
    texts = [
        StoredText(
            mention_id=row[0],
            source=row[1],
            published_at=row[2],
            title=row[3],
            summary=row[4],
            author=row[5],
            topics=tuple(row[6] or ()),
            url=row[7],
        )
        for row in rows
    ]
    return texts, total
