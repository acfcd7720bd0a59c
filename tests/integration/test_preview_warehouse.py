"""Previews of stored data on a real DuckDB file: the alert the watch cycle opened (rebuilt
into the very email it queued), the digest of the period that just ended, hostile titles
escaped, and the warehouse never written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.preview import make_preview, preview_page
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from tests.preview_data import ESCAPED_SCRIPT, SCRIPT_TITLE, STORED_TITLE, fill_crisis, outbox
from vigie.errors import VigieError, WarehouseError
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

# 14:05 UTC: the digest run then ends at 09:00 in Toronto (14:00 UTC), after the crisis.
NOW = datetime(2026, 11, 25, 14, 5, tzinfo=UTC)
CRISIS_END = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + CELL_TOML + '[warehouse]\npath = "wh.duckdb"\n')


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_stored_alert_is_the_email_the_watch_cycle_queued(settings: Settings) -> None:
    alert_id = fill_crisis(settings, now=CRISIS_END)
    with open_warehouse(settings.warehouse_path) as con:
        (queued,) = Store(con).pending_messages(10)
    preview = make_preview(settings, "alert", now=NOW)
    assert preview.data == "stored"
    assert preview.detail == (
        f"stored data (alert {alert_id} on 'marque', opened 2026-11-25 13:30 UTC)"
    )
    assert preview.message.subject == queued.subject
    assert preview.message.recipients == queued.recipients
    assert preview.message.html == queued.html
    assert preview.message.images == queued.images


def test_hostile_titles_stay_escaped_in_the_page(settings: Settings) -> None:
    fill_crisis(settings, now=CRISIS_END)
    for kind in ("alert", "digest"):
        preview = make_preview(settings, kind, now=NOW)  # type: ignore[arg-type]
        page = preview_page(preview, settings, now=NOW)
        assert preview.data == "stored"
        assert ESCAPED_SCRIPT in page
        assert SCRIPT_TITLE not in page and "<script" not in page
        assert STORED_TITLE in page


def test_the_stored_digest_is_the_period_that_just_ended(settings: Settings) -> None:
    fill_crisis(settings, now=CRISIS_END)
    preview = make_preview(settings, "digest", data="stored", now=NOW)
    assert preview.detail == (
        "stored data (the daily period from 2026-11-24 14:00 to 2026-11-25 14:00 UTC)"
    )
    assert preview.message.subject == "[Vigie][RÉSUMÉ] Laiterie Boréale — 25 novembre 2026"
    assert STORED_TITLE in preview.message.html
    # Nothing of the sample: its failing source is not in the stored data.
    assert "Blogue du terroir" not in preview.message.html


def test_an_empty_warehouse_falls_back_to_the_sample_and_stored_says_what_to_do(
    settings: Settings,
) -> None:
    with open_warehouse(settings.warehouse_path):
        pass
    assert make_preview(settings, "alert", now=NOW).detail == (
        "sample data (a fictional crisis; no alert stored yet)"
    )
    with pytest.raises(VigieError, match=r"no alert stored in .*--sample"):
        make_preview(settings, "alert", data="stored", now=NOW)


def test_previews_never_write_the_warehouse(settings: Settings) -> None:
    alert_id = fill_crisis(settings, now=CRISIS_END)
    path = settings.warehouse_path
    before = _digest(path)
    for kind in ("alert", "digest", "readiness"):
        for data in ("auto", "sample"):
            make_preview(settings, kind, data=data, now=NOW + timedelta(hours=1))  # type: ignore[arg-type]
    assert _digest(path) == before
    assert sorted(p.name for p in path.parent.glob("wh.duckdb*")) == ["wh.duckdb"]
    # Only the email the cycle queued, still unsent.
    assert outbox(path) == [(f"{alert_id}.opened", False)]


def test_a_warehouse_behind_on_migrations_is_reported_not_upgraded(settings: Settings) -> None:
    path = settings.warehouse_path
    with open_warehouse(path) as con:
        con.execute("DELETE FROM schema_migrations WHERE version = 12")
    before = _digest(path)
    with pytest.raises(WarehouseError, match=r"lacks 1 migration.*vigie db migrate.*--sample"):
        make_preview(settings, "alert", data="stored", now=NOW)
    assert _digest(path) == before
