"""What every part of the store shares: the connection, transactions, SQL fragments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


# The sentiment label of a score in [-1, 1], as the bucket tables and reports use it.
SENTIMENT_LABEL_SQL = (
    "CASE WHEN sentiment IS NULL THEN 'unknown' WHEN sentiment <= -0.05 THEN 'negative' "
    "WHEN sentiment >= 0.05 THEN 'positive' ELSE 'neutral' END"
)


# What a drill created (migration 012): real figures leave these out.
DRILL_SOURCES = "(SELECT name FROM sources WHERE drill)"


# A text cell starting with =, +, -, @, a tab or a carriage return is a formula to spreadsheets.
_FORMULA_PATTERN = "'^[-=+@\t\r]'"


# The columns of a top story, as top_stories and collected_stories return them.
STORY_KEYS = (
    "story_id",
    "title",
    "url",
    "source",
    "tier",
    "mentions",
    "sources",
    "first_published_at",
    "topics",
)


DRILL_ALERTS = "(SELECT alert_id FROM alerts WHERE drill)"


class StoreBase:
    """The connection a store works on (the caller's) and its transactions."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing. Within another transaction of this store, part of it: a caller
        makes many changes one commit (each commit writes the log to disk)."""
        if self._transactions:
            self._transactions += 1
            try:
                yield
            finally:
                self._transactions -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._transactions = 1
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            self._transactions = 0
        self.con.execute("COMMIT")
