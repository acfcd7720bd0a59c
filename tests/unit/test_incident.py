"""Incident mode's plain functions: extra queries, the plan, situation reports and the final
report rendered in French and English with hostile text, and the incidents table on a real
DuckDB file."""

from __future__ import annotations

import dataclasses
import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape

from tasks.notify.digest import PeriodAlert, TopStory
from tasks.notify.incident import (
    IncidentPlan,
    IncidentReport,
    Sitrep,
    TimelineEvent,
    TopicCount,
    begin_incident,
    check_recipients,
    close_incident,
    elapsed_label,
    extra_watches,
    incident_recipients,
    incident_topic,
    queue_sitrep,
    render_report,
    render_sitrep,
    report_message_id,
    sitrep_message_id,
    wait_until,
    with_extra_watches,
)
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.errors import QueryError, VigieError
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
HOSTILE = (
    "<script>alert('x')</script>\r\nBcc: victim@example.org "
    "[click](javascript:alert(1)) **bold** | pipe"
)


def _settings(tmp_path: Path, language: str = "fr") -> Settings:
    text = MINIMAL_TOML.replace('language = "fr"', f'language = "{language}"')
    return settings_from(tmp_path, text + CELL_TOML + '\n[warehouse]\npath = "wh.duckdb"\n')


def test_a_malformed_extra_query_names_itself_and_its_position() -> None:
    with pytest.raises(QueryError) as caught:
        extra_watches("rappel", ["listeria", "(rappel OR lait"])
    message = str(caught.value)
    assert message.startswith("extra query 2 '(rappel OR lait': position ")
    assert "\n" not in message


def test_extra_queries_become_watch_topics_with_valid_names() -> None:
    watches = extra_watches("Rappel de fromages", ["listeria", 'rappel* NEAR/5 "lait cru"'])
    assert [w.name for w in watches] == [
        "incident Rappel de fromages 1",
        "incident Rappel de fromages 2",
    ]
    long = incident_topic("x" * 80, 10)
    assert len(long) <= 80 and long.endswith(" 10")
    with pytest.raises(VigieError, match="incident name"):
        extra_watches("bad\nname", [])


def test_extra_watches_join_the_settings_and_derived_search_queries(tmp_path: Path) -> None:
    text = (
        MINIMAL_TOML
        + '\n[[sources]]\nname = "Nouvelles"\nkind = "news_search"\nurl = "http://127.0.0.1:9/"\n'
        + 'language = "fr"\nregion = "CA"\n'
    )
    settings = settings_from(tmp_path, text)
    search = next(s for s in settings.sources if s.kind == "news_search")
    assert search.query is not None and "listeria" not in search.query
    watched = with_extra_watches(settings, extra_watches("rappel", ["listeria"]))
    assert [w.name for w in watched.watch] == ["marque", "incident rappel 1"]
    search = next(s for s in watched.sources if s.kind == "news_search")
    assert search.query is not None and "listeria" in search.query
    # Applying them twice changes nothing.
    assert with_extra_watches(watched, extra_watches("rappel", ["listeria"])) == watched


def test_recipients_are_the_cell_then_the_extra_addresses_once_each(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    extra = check_recipients(["presse@agence.example", "AWA.DIALLO@laiterie-boreale.example"])
    assert incident_recipients(settings, extra) == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
        "sophie.roy@laiterie-boreale.example",
        "presse@agence.example",
    )
    with pytest.raises(VigieError, match="extra recipient"):
        check_recipients(["presse@agence.example\r\nBcc: x@y.example"])


def test_the_plan_labels_cycles_and_says_which_report_is_due() -> None:
    plan = IncidentPlan.of(T0, cadence_minutes=5, duration_hours=3, sitrep_every_minutes=60)
    assert [plan.label(T0 + timedelta(minutes=m)) for m in (0, 5.5, 60, 90)] == [
        "H+0",
        "H+0:05",
        "H+1",
        "H+1:30",
    ]
    assert plan.sitrep_due(T0 + timedelta(minutes=59)) == 0
    assert plan.sitrep_due(T0 + timedelta(minutes=61)) == 1
    assert plan.sitrep_due(T0 + timedelta(hours=2, minutes=1)) == 2
    assert plan.sitrep_due(T0 + timedelta(hours=9)) == 3  # never past the end
    # A cycle that overran starts the next one at once, and only one.
    assert plan.next_cycle(T0, T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=7)
    assert plan.next_cycle(T0 + timedelta(minutes=4), T0 + timedelta(minutes=7)) == (
        T0 + timedelta(minutes=9)
    )
    assert elapsed_label(timedelta(hours=2)) == "H+2" == plan.sitrep_label(2)


def test_waiting_stops_as_soon_as_a_stop_is_requested() -> None:
    now = [T0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += timedelta(seconds=seconds)

    asks = iter([False, False, True])
    stopped = wait_until(
        T0 + timedelta(minutes=5), lambda: next(asks), poll_s=5, clock=lambda: now[0], sleep=sleep
    )
    assert stopped is True and naps == [5, 5]
    assert not wait_until(T0, lambda: False, clock=lambda: now[0], sleep=sleep)


def _sitrep() -> Sitrep:
    return Sitrep(
        incident_id="inc-1",
        name="rappel",
        number=2,
        label="H+2",
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        started_at=T0,
        topics=(TopicCount("marque", 12, 40, False), TopicCount("incident rappel 1", 3, 5, True)),
        stories=(
            TopStory("s1", HOSTILE, "javascript:alert(1)", HOSTILE, 3, 2, 1, T0, ("marque",)),
            TopStory(
                "s2",
                "Rappel de fromages (listeria)",
                "https://quotidien.example/a(1)?x=<b>&y=1",
                "Le Quotidien",
                1,
                4,
                2,
                T0,
                ("marque",),
            ),
        ),
        events=(
            TimelineEvent(T0 + timedelta(minutes=70), "al-1", "opened", HOSTILE, "crise", None),
            TimelineEvent(
                T0 + timedelta(minutes=80), "al-1", "acknowledged", "marque", "crise", HOSTILE
            ),
        ),
        open_alerts=(
            PeriodAlert("al-1", "marque", "crise", "acknowledged", T0, None, 80.0, 12, HOSTILE, T0),
        ),
    )


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_situation_report_escapes_hostile_text(tmp_path: Path, language: str) -> None:
    settings = _settings(tmp_path, language)
    message, markdown = render_sitrep(_sitrep(), settings, ["cell@example.org"])
    assert message.message_id == sitrep_message_id("inc-1", 2) == "incident.inc-1.sitrep.2"
    assert message.kind == "incident" and message.critical
    if language == "fr":
        assert message.subject == "[Vigie][INCIDENT] rappel — point de situation n° 2 (H+2)"
        assert "Nouveaux sujets" in message.html and "Volumes par sujet" in message.text
        assert "prise en charge par" in message.text
    else:
        assert message.subject == "[Vigie][INCIDENT] rappel — situation report #2 (H+2)"
        assert "New stories" in message.html and "Volumes per topic" in message.text
        assert "acknowledged by" in message.text
    # HTML: no live markup from the feed, no script link; the safe link is escaped.
    assert "<script>" not in message.html
    # Escaped as the templates' autoescape writes it (markupsafe: &#39; for the apostrophe).
    assert str(escape("<script>alert('x')</script>")) in message.html
    assert "javascript:" not in message.html.replace(html.escape("javascript:alert(1)"), "")
    assert 'href="https://quotidien.example/a(1)?x=&lt;b&gt;&amp;y=1"' in message.html
    # Plain text and markdown: one line per item (CR/LF collapsed), no raw HTML or links.
    assert "\r" not in message.text and "\nBcc:" not in message.text
    assert "<script>" not in markdown and "\nBcc:" not in markdown
    assert "](javascript:" not in markdown and "[click]" not in markdown
    assert "\\*\\*bold\\*\\*" in markdown and "\\| pipe" in markdown
    # The safe story is a markdown link whose target cannot close early.
    assert "](https://quotidien.example/a%281%29?x=%3Cb%3E&y=1)" in markdown
    assert "| incident rappel 1" in markdown


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_incident_report_escapes_hostile_text(tmp_path: Path, language: str) -> None:
    settings = _settings(tmp_path, language)
    sitrep = _sitrep()
    report = IncidentReport(
        incident_id="inc-1",
        name="rappel",
        status="stopped",
        started_at=T0,
        ended_at=T0 + timedelta(hours=3),
        queries=(HOSTILE,),
        stop_requested_by=HOSTILE,
        sitreps=3,
        topics=sitrep.topics,
        intervals=(("H+0", (10, 1)), ("H+1", (12, 3)), ("H+2", (18, 1))),
        stories=sitrep.stories,
        events=sitrep.events,
        open_alerts=sitrep.open_alerts,
    )
    message, markdown = render_report(report, settings, ["cell@example.org"])
    assert message.message_id == report_message_id("inc-1")
    if language == "fr":
        assert message.subject == "[Vigie][INCIDENT] rappel — rapport d’incident (arrêté)"
        assert "Chronologie des alertes" in markdown and "Prises en charge" in markdown
    else:
        assert message.subject == "[Vigie][INCIDENT] rappel — incident report (stopped)"
        assert "Timeline of alerts" in markdown and "Acknowledgements" in markdown
    assert "<script>" not in message.html and "<script>" not in markdown
    assert "\nBcc:" not in message.text and "\nBcc:" not in markdown
    assert "](javascript:" not in markdown
    assert "| H\\+1 | 12 | 3 |" in markdown or "| H+1 | 12 | 3 |" in markdown


def test_the_incidents_table_starts_stops_and_closes_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    plan = IncidentPlan.of(T0, cadence_minutes=5, duration_hours=2, sitrep_every_minutes=60)
    with open_warehouse(settings.warehouse_path) as con:
        store = IncidentStore(con)
        incident, duplicate = begin_incident(store, "rappel", {"extra_queries": []}, plan, "run-1")
        assert not duplicate and incident.status == "running"
        # The same run again resumes it; another run for the same name is a duplicate.
        assert begin_incident(store, "rappel", {}, plan, "run-1") == (incident, False)
        again, duplicate = begin_incident(store, "rappel", {}, plan, "run-2")
        assert duplicate and again.incident_id == incident.incident_id
        # After its end, an incident left running is closed and a new one starts.
        later = IncidentPlan.of(
            T0 + timedelta(hours=3), cadence_minutes=5, duration_hours=2, sitrep_every_minutes=60
        )
        fresh, duplicate = begin_incident(store, "rappel", {}, later, "run-3")
        assert not duplicate and fresh.incident_id != incident.incident_id
        assert store.incident(incident.incident_id).status == "stopped"  # type: ignore[union-attr]

        stopping = store.request_incident_stop("rappel", "Awa", T0 + timedelta(hours=3, minutes=5))
        assert stopping is not None and stopping.stop_requested_by == "Awa"
        assert store.request_incident_stop("inconnu", "Awa", T0) is None

        recipients = ["cell@example.org"]
        queued, _ = queue_sitrep(
            store,
            settings,
            fresh,
            number=1,
            start=later.started_at,
            end=later.sitrep_at(1),
            extra_topics=[],
            recipients=recipients,
            now=later.sitrep_at(1),
        )
        assert queued
        queued, _ = queue_sitrep(
            store,
            settings,
            fresh,
            number=1,
            start=later.started_at,
            end=later.sitrep_at(1),
            extra_topics=[],
            recipients=recipients,
            now=later.sitrep_at(1),
        )
        assert not queued  # a rerun queues nothing new
        closed, markdown = close_incident(
            store,
            settings,
            store.incident(fresh.incident_id),  # type: ignore[arg-type]
            status="stopped",
            ended_at=later.sitrep_at(1),
            recipients=recipients,
        )
        assert closed and "rappel" in markdown
        stored = store.incident(fresh.incident_id)
        assert stored is not None
        assert (stored.status, stored.sitreps, stored.report) == ("stopped", 1, markdown)
        closed, _ = close_incident(
            store, settings, stored, status="ended", ended_at=T0, recipients=recipients
        )
        assert not closed
        assert store.incident(fresh.incident_id).status == "stopped"  # type: ignore[union-attr]
        assert sorted(m for m, *_ in store.outbox_log("incident")) == [
            report_message_id(fresh.incident_id),
            sitrep_message_id(fresh.incident_id, 1),
        ]


def test_the_report_reads_what_was_collected_and_done_during_the_incident(
    tmp_path: Path,
) -> None:
    from tasks.notify.incident import build_report, build_sitrep
    from vigie.models import Mention, VolumeSignal

    settings = _settings(tmp_path)
    plan = IncidentPlan.of(T0, cadence_minutes=5, duration_hours=2, sitrep_every_minutes=60)

    def mention(n: int, collected: datetime, title: str, topics: tuple[str, ...]) -> Mention:
        return Mention(
            f"m{n}",
            "Le Quotidien du Nord",
            "news",
            1,
            f"https://quotidien.example/{n}",
            title,
            "",
            None,
            collected - timedelta(minutes=5),
            collected,
            "fr",
            f"story-{n}",
            topics,
        )

    mentions = [
        mention(1, T0 - timedelta(minutes=10), "Avant l'incident", ("marque",)),
        mention(2, T0 + timedelta(minutes=20), HOSTILE, ("marque", "incident rappel 1")),
        mention(3, T0 + timedelta(minutes=70), "Rappel de fromages", ("marque",)),
    ]
    signal = VolumeSignal("marque", T0, T0 + timedelta(hours=1), 12, 2.0, 1.0, 6.0, 5.0, True)
    with open_warehouse(settings.warehouse_path) as con:
        store = IncidentStore(con)
        store.load_cycle("c1", settings.sources, [], mentions, [], T0 + timedelta(minutes=70))
        incident, _ = begin_incident(
            store, "rappel", {"extra_queries": ["listeria"]}, plan, "run-1"
        )
        store.open_alert(
            "al-1", signal, level="crise", reason="r", now=T0 + timedelta(minutes=30), messages=[]
        )
        store.acknowledge_alert("al-1", "Awa <b>Diallo</b>", T0 + timedelta(minutes=40))
        # What a drill creates never shows in an incident's reports.
        con.execute(
            "INSERT INTO sources (name, kind, url, platform, tier, drill) "
            "VALUES ('Exercice', 'rss', 'http://127.0.0.1:9/', 'news', 1, true)"
        )
        drill_mention = mention(4, T0 + timedelta(minutes=25), "[EXERCICE] Drill", ("marque",))
        store.load_cycle(
            "c2",
            settings.sources,
            [],
            [dataclasses.replace(drill_mention, source="Exercice")],
            [],
            T0 + timedelta(minutes=25),
        )
        store.open_alert(
            "al-drill",
            signal,
            level="crise",
            reason="drill",
            now=T0 + timedelta(minutes=26),
            messages=[],
            drill=True,
        )
        sitrep = build_sitrep(
            store,
            settings,
            incident,
            number=1,
            start=T0,
            end=plan.sitrep_at(1),
            extra_topics=["incident rappel 1"],
        )
        report = build_report(
            store,
            settings,
            incident,
            status="ended",
            ended_at=T0 + timedelta(hours=2),
            extra_topics=["incident rappel 1"],
            interval=timedelta(hours=1),
        )
    assert [(t.topic, t.period, t.total, t.extra) for t in sitrep.topics] == [
        ("marque", 1, 1, False),
        ("incident rappel 1", 1, 1, True),
    ]
    assert [s.story_id for s in sitrep.stories] == ["story-2"]
    assert [(e.kind, e.by) for e in sitrep.events] == [
        ("opened", None),
        ("acknowledged", "Awa <b>Diallo</b>"),
    ]
    assert [(a.alert_id, a.acknowledged_by) for a in sitrep.open_alerts] == [
        ("al-1", "Awa <b>Diallo</b>")
    ]
    assert [(t.topic, t.total) for t in report.topics] == [("marque", 2), ("incident rappel 1", 1)]
    assert report.intervals == (("H+0", (1, 1)), ("H+1", (1, 0)))
    assert report.queries == ("listeria",)
    message, markdown = render_report(report, settings, ["cell@example.org"])
    assert "prise en charge par Awa &lt;b&gt;Diallo&lt;/b&gt;" in message.html
    assert "| H\\+1 | 1 | 0 |" in markdown or "| H+1 | 1 | 0 |" in markdown
    assert "<b>" not in markdown and "<script>" not in message.html
