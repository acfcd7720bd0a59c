"""The life of an alert on a real warehouse: opened once, escalated, updated, resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment
from tasks.notify.alerts import raise_alerts
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import VolumeSignal
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _settings(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, MINIMAL_TOML + CELL_TOML + "\n[detection]\ncalm_minutes = 120\n")


def _assessment(at: datetime, score: float, level: str, current: int = 12) -> TopicAssessment:
    signal = VolumeSignal("marque", at - timedelta(hours=1), at, current, 1.0, 1.0, 0.9, 8.0, True)
    severity = Severity(score, level, {"volume": score}, {})  # type: ignore[arg-type]
    return TopicAssessment(signal, 0.9, severity)


def _run(path: Path, settings: Settings, assessment: TopicAssessment, at: datetime):  # type: ignore[no-untyped-def]
    with open_warehouse(path) as con:
        return raise_alerts(Store(con), settings, [assessment], now=at, run_url=None)


def _events(path: Path) -> list[str]:
    with open_warehouse(path) as con:
        return [
            k
            for (k,) in con.execute("SELECT kind FROM alert_events ORDER BY occurred_at").fetchall()
        ]


def test_an_alert_lives_from_opening_to_resolution(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    opened = _run(path, settings, _assessment(NOW, 50, "alerte"), NOW)
    same = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=10), 52, "alerte"),
        NOW + timedelta(minutes=10),
    )
    grown = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=20), 60, "alerte"),
        NOW + timedelta(minutes=20),
    )
    worse = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=30), 80, "crise"),
        NOW + timedelta(minutes=30),
    )
    quieter = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=60), 20, "vigilance"),
        NOW + timedelta(minutes=60),
    )
    calm = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=160), 5, "veille"),
        NOW + timedelta(minutes=160),
    )
    assert len(opened.opened) == 1
    alert_id = opened.opened[0]
    assert same.opened == same.updated == same.escalated == []
    assert grown.updated == [alert_id]
    assert worse.escalated == [alert_id]
    assert quieter.resolved == []  # calm for 30 min only
    assert calm.resolved == [alert_id]
    assert _events(path) == ["opened", "updated", "escalated", "resolved"]
    with open_warehouse(path) as con:
        level, status, emails = con.execute(
            "SELECT level, status, (SELECT count(*) FROM outbox) FROM alerts"
        ).fetchall()[0]
    assert (level, status, emails) == ("crise", "resolved", 1)


def test_a_topic_below_alerte_opens_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    changes = _run(path, settings, _assessment(NOW, 40, "vigilance"), NOW)
    assert changes.opened == [] and _events(path) == []


def test_after_resolution_a_new_trigger_opens_a_new_alert(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    first = _run(path, settings, _assessment(NOW, 50, "alerte"), NOW)
    _run(
        path, settings, _assessment(NOW + timedelta(hours=3), 0, "veille"), NOW + timedelta(hours=3)
    )
    second = _run(
        path,
        settings,
        _assessment(NOW + timedelta(hours=4), 55, "alerte"),
        NOW + timedelta(hours=4),
    )
    assert len(second.opened) == 1 and second.opened != first.opened


def test_replay_over_stored_history_finds_the_burst_and_writes_nothing(tmp_path: Path) -> None:
    from tasks.detect.replay import replay_history
    from vigie.models import Mention

    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    burst_at = NOW - timedelta(days=1)
    mentions = [
        Mention(
            f"calm{h}",
            "Le Quotidien",
            "news",
            2,
            f"https://q.example/c/{h}",
            "La Laiterie Boréale ouvre une boutique",
            "",
            None,
            NOW - timedelta(days=3) + timedelta(hours=h, minutes=7),
            NOW,
            "fr",
            f"c{h}",
            ("marque",),
        )
        for h in range(0, 72, 3)
    ] + [
        Mention(
            f"burst{i}",
            f"source-{i % 4}",
            ["news", "forum", "social"][i % 3],
            1 + i % 3,
            f"https://q.example/b/{i}",
            "Scandale : rappel des fromages Boréale",
            "",
            -0.8,
            burst_at + timedelta(minutes=2 * i),
            NOW,
            "fr",
            "recall",
            ("marque",),
        )
        for i in range(20)
    ]
    with open_warehouse(path) as con:
        Store(con).load_cycle("c1", [], [], mentions, [], NOW)
        replayed = replay_history(
            Store(con),
            ["marque"],
            settings.detection,
            since=NOW - timedelta(days=2),
            until=NOW,
            step=timedelta(hours=1),
        )
        alerts_table = con.execute("SELECT count(*) FROM alerts").fetchall()[0][0]
    assert len(replayed) == 1
    assert burst_at < replayed[0].opened_at <= burst_at + timedelta(hours=1)
    assert replayed[0].level in ("alerte", "crise")
    assert replayed[0].resolved_at is not None
    assert alerts_table == 0


def test_a_new_source_bringing_its_archive_opens_no_alert(tmp_path: Path) -> None:
    """Items of a source's first cycle (undated ones land at collection time) are backfill."""
    from tasks.detect.volume import assess_watches
    from vigie.models import FetchResult, Mention, SourceOutcome
    from vigie.settings import Source

    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    old = Source(name="old", url="http://127.0.0.1/old")
    new = Source(name="new", url="http://127.0.0.1/new")

    def run(source: Source) -> SourceOutcome:
        return SourceOutcome(FetchResult(source.name, source.url, "ok", NOW, 0.1, 200), "ok")

    calm = [
        Mention(
            f"calm{h}",
            "old",
            "news",
            2,
            f"https://q.example/c/{h}",
            "Boréale ouvre",
            "",
            None,
            NOW - timedelta(hours=h, minutes=30),
            NOW,
            "fr",
            f"c{h}",
            ("marque",),
        )
        for h in range(1, 72, 4)
    ]
    archive = [
        Mention(
            f"arch{i}",
            "new",
            "forum",
            3,
            f"https://n.example/{i}",
            "Scandale : rappel des fromages Boréale",
            "",
            -0.8,
            NOW - timedelta(minutes=1),
            NOW,
            "fr",
            "recall",
            ("marque",),
        )
        for i in range(30)
    ]
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle("c1", [old], [run(old)], calm, [], NOW - timedelta(hours=1))
        store.load_cycle("c2", [old, new], [run(old), run(new)], archive, [], NOW)
        [assessment] = assess_watches(store, ["marque"], settings.detection, NOW)
    assert assessment.signal.current == 0
    assert not assessment.alerting


def test_acknowledging_an_alert_is_an_event_and_keeps_it_open_for_updates(tmp_path: Path) -> None:
    from vigie.errors import WarehouseError

    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    [alert_id] = _run(path, settings, _assessment(NOW, 50, "alerte"), NOW).opened
    with open_warehouse(path) as con:
        first = Store(con).acknowledge_alert(alert_id, "Awa Diallo", NOW + timedelta(minutes=5))
        again = Store(con).acknowledge_alert(alert_id, "Louis", NOW + timedelta(minutes=6))
        try:
            Store(con).acknowledge_alert("al-nope", "Awa", NOW)
            missing = ""
        except WarehouseError as err:
            missing = str(err)
    worse = _run(
        path,
        settings,
        _assessment(NOW + timedelta(minutes=20), 80, "crise"),
        NOW + timedelta(minutes=20),
    )
    assert (first, again) == ("open", "acknowledged")
    assert missing == "there is no alert al-nope (vigie status lists open alerts)"
    assert worse.escalated == [alert_id] and worse.opened == []
    assert _events(path) == ["opened", "acknowledged", "escalated"]
