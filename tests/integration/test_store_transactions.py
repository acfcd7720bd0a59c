"""A transaction of the store within another is part of it, on a real DuckDB file: one commit
for many changes (raise_alerts: a burst of stories), and all or nothing still."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.connection import open_warehouse
from warehouse.store import Store


def _notes(path: Path) -> list[tuple[object, ...]]:
    with open_warehouse(path) as con:
        return con.execute("SELECT v FROM t ORDER BY v").fetchall()


def test_an_inner_transaction_commits_with_the_outer_one_and_fails_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    with open_warehouse(path) as con:
        con.execute("CREATE TABLE t (v INTEGER)")
        store = Store(con)
        with store.transaction():
            with store.transaction():
                con.execute("INSERT INTO t VALUES (1)")
            with store.transaction():
                con.execute("INSERT INTO t VALUES (2)")
        assert _notes(path) == [(1,), (2,)]

        with pytest.raises(RuntimeError), store.transaction():
            with store.transaction():
                con.execute("INSERT INTO t VALUES (3)")  # committed only with the outer
            raise RuntimeError("the outer transaction fails after the inner one ended")
        assert _notes(path) == [(1,), (2,)]

        with pytest.raises(RuntimeError), store.transaction():
            con.execute("INSERT INTO t VALUES (4)")
            with store.transaction():
                raise RuntimeError("the inner one fails")
        assert _notes(path) == [(1,), (2,)]

        # After a failure the store starts transactions of its own again.
        with store.transaction():
            con.execute("INSERT INTO t VALUES (5)")
        assert _notes(path) == [(1,), (2,), (5,)]
