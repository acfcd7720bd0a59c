"""Drills in a real DuckDB file: the drill row across reruns, drill data left out of real
figures, the escalation of a drill alert marked as a drill, and the wait for an acknowledgement
given from another thread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.detect.volume import assess_watches
from tasks.enrich.quality import quality_report
from tasks.notify.drill import drill_outcome, wait_for_acknowledgement
from tasks.notify.escalation import escalate_unacknowledged
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import FetchResult, Mention, OutboxMessage, SourceOutcome, VolumeSignal
from vigie.settings import Settings, Source
from warehouse.connection import open_warehouse
from warehouse.drills import (
    alert_state,
    begin_drill,
    drill_alert,
    finish_drill,
    record_detection,
    record_injection,
    register_drill_sources,
)
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
REAL = "Le Quotidien du Nord"
DRILL = "drill-x/quotidien"


def _settings(tmp_path: Path) -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return settings_from(tmp_path, MINIMAL_TOML + '[warehouse]\npath = "wh.duckdb"\n' + CELL_TOML)


def _mention(n: int, source: str, topic: str, story: str) -> Mention:
    return Mention(
        mention_id=f"m{n}",
        source=source,
        platform="news",
        tier=1,
        url=f"https://x.example/{n}",
        title=f"Laiterie Boréale {n}",
        summary="",
        author=None,
        published_at=NOW - timedelta(minutes=n),
        collected_at=NOW,
        language="fr",
        story_id=story,
        topics=(topic,),
        sentiment=-0.5,
    )


def _outcome(source: str, error: str | None) -> SourceOutcome:
    status = "error" if error else "ok"
    fetch = FetchResult(
        source=source,
        url="https://x.example/",
        status=status,
        started_at=NOW,
        duration_s=0.1,
        error=error,
    )  # type: ignore[arg-type]
    return SourceOutcome(fetch, status, error=error)  # type: ignore[arg-type]


def _alert(store: Store, alert_id: str, topic: str, drill: bool) -> None:
    signal = VolumeSignal(topic, NOW - timedelta(hours=1), NOW, 12, 2.0, 1.0, 0.9, 8.0, True)
    message = OutboxMessage(
        f"{alert_id}.opened", "alert", ("a@x.example",), "s", "<p>h</p>", drill=drill
    )
    store.open_alert(
        alert_id, signal, level="alerte", reason="r", now=NOW, messages=[message], drill=drill
    )


def _fill(settings: Settings, *, with_drill: bool) -> None:
    drill_source = Source(name=DRILL, url="http://127.0.0.1:1/drill.xml", tier=1)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        store.load_cycle(
            "c1",
            settings.sources,
            [_outcome(REAL, "HTTP 500")],
            [_mention(1, REAL, "marque", "s1")],
            [],
            NOW,
        )
        _alert(store, "al-real", "marque", drill=False)
        if with_drill:
            register_drill_sources(store, [drill_source])
            store.load_cycle(
                "drill-x.calm",
                [drill_source],
                [_outcome(DRILL, "HTTP 503")],
                [_mention(n, DRILL, "drill-x", "s-drill") for n in range(2, 12)],
                [],
                NOW,
            )
            _alert(store, "al-drill", "drill-x", drill=True)


def _figures(settings: Settings) -> tuple[object, ...]:
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        return (
            store.top_stories(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1)),
            store.failed_sources(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1)),
            store.period_alerts(start=NOW - timedelta(days=1), end=NOW + timedelta(hours=1)),
            store.open_alerts(),
            store.source_health(),
            store.counts(drills=False),
            store.covered_shares(
                {s.name: 1.0 for s in settings.sources},
                start=NOW - timedelta(days=1),
                window=timedelta(hours=1),
                windows=25,
                until=NOW + timedelta(hours=1),
            ),
            store.first_collection_run(),
            assess_watches(
                store,
                [w.name for w in settings.watch],
                settings.detection,
                NOW,
                sources=[s.name for s in settings.sources],
                min_coverage=settings.health.min_coverage,
            ),
            quality_report(
                store, since=NOW - timedelta(days=1), now=NOW, settings=settings
            ).as_dict(),
        )


def test_real_figures_are_the_same_with_or_without_a_drill(tmp_path: Path) -> None:
    without = _settings(tmp_path / "without")
    with_drill = _settings(tmp_path / "with")
    _fill(without, with_drill=False)
    _fill(with_drill, with_drill=True)
    assert _figures(with_drill) == _figures(without)
    with open_warehouse(with_drill.warehouse_path) as con:
        counts = Store(con).counts()
    assert counts["mentions"] == 11 and counts["alerts"] == 2  # all of it is kept, marked


def test_a_rerun_finds_the_drill_and_a_finished_drill_keeps_its_outcome(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        first = begin_drill(
            store,
            drill_id="drill-x",
            name="X",
            topic="drill-x",
            now=NOW,
            ack_wait_minutes=5,
            flow_run_id=None,
        )
        injected = record_injection(store, "drill-x", NOW + timedelta(minutes=1))
        assert record_injection(store, "drill-x", NOW + timedelta(hours=1)) == injected
        _alert(store, "al-drill", "drill-x", drill=True)
        assert drill_alert(store, "drill-x") == "al-drill"
        record_detection(store, "drill-x", "al-drill", NOW + timedelta(minutes=1, seconds=20))
        again = begin_drill(
            store,
            drill_id="drill-x",
            name="X",
            topic="drill-x",
            now=NOW + timedelta(hours=2),
            ack_wait_minutes=9,
            flow_run_id=None,
        )
        assert again.started_at == first.started_at and again.time_to_detect_s == 20.0
        done = finish_drill(
            store,
            "drill-x",
            status="not_acknowledged",
            alert_sent_at=None,
            acknowledged_at=None,
            acknowledged_by=None,
            time_to_ack_s=None,
            now=NOW + timedelta(minutes=6),
        )
        later = finish_drill(
            store,
            "drill-x",
            status="acknowledged",
            alert_sent_at=None,
            acknowledged_at=NOW,
            acknowledged_by="Y",
            time_to_ack_s=1.0,
            now=NOW + timedelta(minutes=9),
        )
    assert done.finished and later == done


def test_an_escalated_drill_alert_is_marked_as_a_drill_and_a_real_one_is_not(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        _alert(store, "al-real", "marque", drill=False)
        _alert(store, "al-drill", "drill-x", drill=True)
        escalate_unacknowledged(store, settings, now=NOW + timedelta(hours=1))
        rows = con.execute(
            "SELECT alert_id, drill, subject FROM outbox WHERE kind = 'escalation' ORDER BY 1"
        ).fetchall()
    assert [(a, d) for a, d, _ in rows] == [("al-drill", True), ("al-real", False)]
    assert rows[0][2].startswith("[EXERCICE] ") and not rows[1][2].startswith("[EXERCICE]")


def test_an_acknowledgement_from_another_thread_ends_the_wait(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = settings.warehouse_path
    with open_warehouse(path) as con:
        _alert(Store(con), "al-drill", "drill-x", drill=True)
        con.execute("UPDATE outbox SET sent_at = ? WHERE alert_id = 'al-drill'", [NOW])

    def acknowledge() -> None:
        time.sleep(0.5)
        with open_warehouse(path) as con:
            Store(con).acknowledge_alert("al-drill", "Awa Diallo", NOW + timedelta(seconds=42))

    def read() -> object:
        with open_warehouse(path) as con:
            return alert_state(Store(con), "al-drill")

    other = threading.Thread(target=acknowledge)
    other.start()
    started = time.monotonic()
    state = wait_for_acknowledgement(read, wait=timedelta(minutes=1), poll_s=0.1)  # type: ignore[arg-type]
    other.join()
    assert time.monotonic() - started < 10
    outcome = drill_outcome(state)  # type: ignore[arg-type]
    assert outcome.status == "acknowledged" and outcome.acknowledged_by == "Awa Diallo"
    assert outcome.time_to_ack_s == 42.0
