"""Breaking-story alerts on a real warehouse: read from stored mentions and sightings, opening the
topic's alert once (a burst of stories is one alert), escalating it, and resolved with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.detect.breaking import StoryAssessment, assess_breaking_stories
from tasks.detect.volume import assess_watches
from tasks.notify.alerts import AlertChanges, raise_alerts
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import Mention
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLOSURE = "La Laiterie Boréale ferme son usine de Sherbrooke"


def _settings(tmp_path: Path, language: str = "fr") -> Settings:
    toml = (MINIMAL_TOML + CELL_TOML + "\n[detection]\ncalm_minutes = 120\n").replace(
        'language = "fr"', f'language = "{language}"'
    )
    return settings_from(tmp_path, toml)


def _mention(
    mention_id: str,
    source: str,
    at: datetime,
    *,
    story: str,
    title: str | None = None,
    sentiment: float | None = 0.2,
    seen_in: tuple[str, ...] = (),
) -> Mention:
    return Mention(
        mention_id,
        source,
        "news",
        3,
        f"https://{source}.example/{mention_id}",
        # Each calm story its own headline: copies of one headline are one mention (title dedup).
        title or f"La Laiterie Boréale ouvre une boutique, numéro {mention_id}",
        "",
        None,
        at,
        at,
        "fr",
        story,
        ("marque",),
        sentiment,
        seen_in=seen_in,
    )


def _calm_week() -> list[Mention]:
    """Three small stories an hour for a week; one in twelve carried by a second source."""
    mentions = []
    for hour in range(1, 7 * 24):
        at = NOW - HOUR * hour - timedelta(minutes=20)
        for i in range(3):
            seen_in = (f"outlet-{(hour + 1) % 9}",) if (hour + i) % 12 == 0 else ()
            mentions.append(
                _mention(
                    f"c{hour}-{i}",
                    f"outlet-{(hour + i) % 9}",
                    at,
                    story=f"c{hour}-{i}",
                    seen_in=seen_in,
                )
            )
    return mentions


def _closure(sources: range, now: datetime) -> list[Mention]:
    return [
        _mention(
            f"closure-{n}",
            f"media-{n}",
            now - timedelta(minutes=50 - 4 * n),
            story="closure",
            title=CLOSURE,
            sentiment=-0.6,
        )
        for n in sources
    ]


def _detect(path: Path, settings: Settings, now: datetime) -> list[StoryAssessment]:
    with open_warehouse(path) as con:
        return assess_breaking_stories(
            Store(con), ["marque"], settings.detection, window_start=now - HOUR, window_end=now
        )


def _raise(path: Path, settings: Settings, now: datetime) -> AlertChanges:
    """Detect and alert as the watch cycle does: the topic's volume, then its stories."""
    stories = _detect(path, settings, now)
    with open_warehouse(path) as con:
        store = Store(con)
        topics = assess_watches(store, ["marque"], settings.detection, now)
        return raise_alerts(store, settings, topics, now=now, run_url=None, stories=stories)


def _load(path: Path, cycle: str, mentions: list[Mention], now: datetime) -> None:
    with open_warehouse(path) as con:
        Store(con).load_cycle(cycle, [], [], mentions, [], now)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(path) as con:
        return con.execute(sql).fetchall()


def test_a_calm_week_of_small_stories_opens_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    assert _detect(path, settings, NOW) == []
    assert _raise(path, settings, NOW).opened == []


def test_a_story_spreading_fast_opens_one_alert_that_names_it_and_lives_its_life(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    # Four outlets in the hour, and a fifth that carries the first's very article (a sighting).
    _load(path, "c2", _closure(range(4), NOW), NOW)
    _load(path, "c3", [_mention("closure-0", "media-4", NOW, story="closure")], NOW)

    [story] = _detect(path, settings, NOW)
    assert story.sources == 5 and story.usual_spread == 1.0 and story.needed == 5.0
    assert sorted(name for name, _ in story.outlets) == [f"media-{n}" for n in range(5)]
    assert story.outlets[0] == ("media-0", "https://media-0.example/closure-0")
    opened = _raise(path, settings, NOW).opened
    assert len(opened) == 1
    [(story_id, topic, level, reason)] = _rows(
        path, "SELECT story_id, topic, level, reason FROM alerts"
    )
    assert (story_id, topic, level) == ("closure", "marque", "alerte")
    assert f"breaking story closure ({CLOSURE!r}): 5 distinct sources" in str(reason)
    [(subject, html)] = _rows(path, "SELECT subject, html FROM outbox")
    assert subject == (
        "[Vigie][ALERTE] Laiterie Boréale : une histoire se propage vite "
        f"« {CLOSURE} » (5 sources en 60 min)"
    )
    assert 'href="https://media-0.example/closure-0"' in str(html)
    assert "media-4" in str(html) and "5 sources différentes" in str(html)
    with open_warehouse(path) as con:
        alert = Store(con).open_alert_for("marque")
        assert alert is not None and [alert.alert_id] == opened

    # A rerun of the same cycle, then the next cycle: nothing opens, nothing is sent twice.
    assert _raise(path, settings, NOW).opened == []
    later = NOW + timedelta(minutes=10)
    assert _raise(path, settings, later) == AlertChanges()
    assert _rows(path, "SELECT count(*) FROM outbox") == [(1,)]

    # Four more outlets (now the topic's volume moves too): the same alert escalates.
    _load(path, "c4", _closure(range(4, 8), later), later)
    escalated = _raise(path, settings, later)
    assert escalated.opened == [] and escalated.escalated == opened
    assert _rows(path, "SELECT level FROM alerts") == [("crise",)]
    assert _rows(path, "SELECT count(*) FROM outbox") == [(1,)]

    # Quiet for calm_minutes (120): the topic's assessment resolves it.
    _raise(path, settings, later + HOUR)
    resolved = _raise(path, settings, later + 3 * HOUR)
    assert resolved.resolved == opened
    assert _rows(path, "SELECT kind FROM alert_events ORDER BY occurred_at") == [
        ("opened",),
        ("escalated",),
        ("resolved",),
    ]


def test_the_story_alert_is_in_english_when_the_organisation_is(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "en")
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    _load(path, "c2", _closure(range(10), NOW), NOW)
    assert len(_raise(path, settings, NOW).opened) == 1
    [(subject, html)] = _rows(path, "SELECT subject, html FROM outbox")
    assert subject == (
        f"[Vigie][CRISIS] Laiterie Boréale: a story is spreading fast “{CLOSURE}” "
        "(10 sources in 60 min)"
    )
    assert "10 different sources picked up this story" in str(html)
    assert "Sources that picked it up, in order" in str(html)
    assert "story picked up fast by many sources" in str(html)


def test_a_story_judged_now_is_not_its_own_baseline(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    earlier = [
        # Rewritten headlines of the same story (one headline copied word for word is one
        # mention, title dedup), two hours before the window.
        _mention(
            f"early-{n}",
            f"early-{n}",
            NOW - 2 * HOUR,
            story="closure",
            title=f"{CLOSURE} : ce que l'on sait, point {n}",
        )
        for n in range(8)
    ]
    _load(path, "c1", earlier + _closure(range(5), NOW), NOW)
    [story] = _detect(path, settings, NOW)
    assert (story.usual_spread, story.needed, story.breaking) == (1.0, 5.0, True)


def test_stories_spreading_at_once_are_one_alert_named_for_the_most_severe(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    release = [
        _mention(
            f"r-{n}",
            f"wire-{n}",
            NOW - timedelta(minutes=30),
            story="release",
            title="La Laiterie Boréale lance un fromage",
            sentiment=-0.3,
        )
        for n in range(6)
    ]
    _load(path, "c2", release + _closure(range(10), NOW), NOW)
    assert {s.story_id for s in _detect(path, settings, NOW) if s.alerting} == {
        "release",
        "closure",
    }
    assert len(_raise(path, settings, NOW).opened) == 1
    assert _rows(path, "SELECT story_id FROM alerts") == [("closure",)]
    [(subject,)] = _rows(path, "SELECT subject FROM outbox")
    assert CLOSURE in str(subject)


def test_replay_opens_the_alert_a_story_spreading_fast_opens_and_names_it(
    tmp_path: Path,
) -> None:
    from tasks.detect.replay import replay_history

    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    _load(path, "c2", _closure(range(6), NOW), NOW)
    with open_warehouse(path) as con:
        store = Store(con)
        [topic] = assess_watches(store, ["marque"], settings.detection, NOW)
        assert not topic.alerting  # the topic's volume alone would not open it
        replayed = replay_history(
            store, ["marque"], settings.detection, since=NOW - HOUR, until=NOW, step=HOUR
        )
    [alert] = replayed
    assert (alert.topic, alert.opened_at, alert.story_id) == ("marque", NOW, "closure")
    assert alert.story_title == CLOSURE and alert.level == "crise"
    assert "breaking" in alert.contributions


def test_vigie_status_names_the_story_that_opened_an_alert(tmp_path: Path) -> None:
    from tests.commands import vigie_here

    settings = _settings(tmp_path)
    path = settings.warehouse_path
    _load(path, "c1", _calm_week(), NOW)
    _load(path, "c2", _closure(range(6), NOW), NOW)
    [opened] = _raise(path, settings, NOW).opened
    status = vigie_here("--config", str(tmp_path / "vigie.toml"), "status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"  {opened} "))
    assert lines[at + 1] == f"    opened by a story spreading fast: {CLOSURE}"


def test_each_copy_of_a_story_carries_its_own_mention_s_text(tmp_path: Path) -> None:
    """Copies are read with their mention's text once per mention: each sighting's copy
    still carries its own mention's headline, whatever the order of the rows."""
    path = tmp_path / "wh.duckdb"
    _load(path, "c1", _calm_week(), NOW)
    mentions = [
        _mention(
            f"m{n}",
            f"media-{n}",
            NOW - timedelta(minutes=40 - n),
            story=f"story-{n % 2}",
            title=f"Laiterie Boréale : l'article numéro {n} sur la fermeture",
            seen_in=tuple(f"relay-{n}-{k}" for k in range(n)),
        )
        for n in range(4)
    ]
    _load(path, "c2", mentions, NOW)
    with open_warehouse(path) as con:
        copies = Store(con).story_copies("marque", start=NOW - HOUR, end=NOW)
    seen = sorted((c.mention.source, c.mention.story_id, c.mention.title) for c in copies)
    expected = sorted(
        (source, m.story_id, m.title) for m in mentions for source in (m.source, *m.seen_in)
    )
    assert seen == expected
