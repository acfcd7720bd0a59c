"""Breaking stories: the spread of a story against its topic's usual spread (plain functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.detect.breaking import (
    StoryAssessment,
    assess_stories,
    one_per_story,
    peak_spread,
    sources_needed,
    story_peaks,
    usual_spread,
)
from vigie.models import StoryCopy, WindowMention
from vigie.settings import Detection

END = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
START = END - HOUR
RECALL = "Rappel de fromages de la Laiterie Boréale : risque de listeria"


def _copy(
    story: str,
    source: str,
    *,
    minutes: int = 30,
    title: str = "La Laiterie Boréale inaugure une fromagerie",
    sentiment: float | None = 0.1,
    tier: int = 3,
) -> StoryCopy:
    mention = WindowMention(source, "news", tier, title, "", sentiment, story)
    slug = source.lower().replace(" ", "-")
    return StoryCopy(mention, f"https://{slug}.example/{story}", START + timedelta(minutes=minutes))


def _calm_baseline(stories_per_hour: int = 6, hours: int = 168) -> list[int]:
    """The peak spreads of a week of many small stories: most carried by one source, one in
    ten by two or three (a syndicated wire story)."""
    rows = []
    for hour in range(hours):
        at = START - HOUR * (hour + 1)
        for i in range(stories_per_hour):
            story = f"s-{hour}-{i}"
            carriers = 1 + (i == 0) + (hour % 2 == 0 and i == 0)
            rows += [(story, f"outlet-{(i + k) % 12}", at) for k in range(carriers)]
    return list(story_peaks(rows, HOUR).values())


def test_peak_spread_counts_distinct_sources_within_one_window() -> None:
    t0 = START
    sightings = [
        ("a", t0),
        ("b", t0 + timedelta(minutes=10)),
        ("a", t0 + timedelta(minutes=20)),  # the same source again: still two
        ("c", t0 + timedelta(minutes=70)),  # a is out of the hour by then, b is in
        ("d", t0 + timedelta(minutes=75)),
    ]
    assert peak_spread(sightings, HOUR) == 3  # b, c, d within [10 min, 75 min]
    assert peak_spread(sightings, timedelta(minutes=30)) == 2
    assert peak_spread([], HOUR) == 0


def test_the_window_is_half_open() -> None:
    t0 = START
    assert peak_spread([("a", t0), ("b", t0 + HOUR)], HOUR) == 1
    assert peak_spread([("a", t0), ("b", t0 + HOUR - timedelta(seconds=1))], HOUR) == 2


def test_story_peaks_measure_each_story() -> None:
    rows = [("x", "a", START), ("x", "b", START), ("y", "a", START)]
    assert story_peaks(rows, HOUR) == {"x": 2, "y": 1}


def test_usual_spread_is_the_spread_nine_stories_in_ten_do_not_exceed() -> None:
    assert usual_spread([1] * 90 + [7] * 10) == 1.0
    assert usual_spread([1] * 80 + [4] * 20) == 4.0
    assert usual_spread([]) == 1.0  # no stories yet: one source per story
    assert usual_spread([0]) == 1.0


def test_a_story_needs_the_minimum_and_the_factor_times_the_usual_spread() -> None:
    assert sources_needed(1.0, min_sources=5, factor=3.0) == 5.0
    assert sources_needed(4.0, min_sources=5, factor=3.0) == 12.0


def test_a_calm_topic_of_many_small_stories_does_not_alert() -> None:
    # The current hour looks like every other: six stories, one syndicated by three outlets.
    copies = [_copy(f"now-{i}", f"outlet-{i}") for i in range(6)]
    copies += [_copy("now-0", "outlet-7"), _copy("now-0", "outlet-8", sentiment=-0.6)]
    found = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=Detection(),
        baseline_negative_share=0.2,
    )
    assert found == []  # no story even reaches the minimum of five sources


def test_one_story_across_ten_outlets_in_an_hour_alerts() -> None:
    copies = [_copy(f"now-{i}", f"outlet-{i}") for i in range(3)]
    outlets = [f"Média {n}" for n in range(10)]
    copies += [
        _copy("recall", name, minutes=5 + 5 * n, title=RECALL, sentiment=-0.6)
        for n, name in enumerate(outlets)
    ]
    [story] = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=Detection(),
        baseline_negative_share=0.2,
    )
    assert story.story_id == "recall" and story.title == RECALL
    assert story.url == "https://média-0.example/recall"
    assert [name for name, _ in story.outlets] == outlets  # in the order they picked it up
    assert story.sources == 10 and story.usual_spread == 2.0 and story.needed == 6.0
    assert story.breaking and story.alerting
    assert story.severity.level in ("alerte", "crise")
    assert story.severity.contributions["breaking"] == 35.0
    assert "volume" not in story.severity.contributions
    signal = story.signal
    assert (signal.current, signal.triggered) == (10, True)
    assert signal.score == pytest.approx(10 / 16)


def test_a_topic_whose_stories_are_often_syndicated_needs_more() -> None:
    # Every other story of the week was carried by five outlets within the hour.
    baseline = story_peaks(
        [
            (f"w-{h}-{i}", f"outlet-{k}", START - HOUR * (h + 1))
            for h in range(168)
            for i in range(4)
            for k in range(5 if i % 2 else 1)
        ],
        HOUR,
    ).values()
    copies = [_copy("recall", f"Média {n}", title=RECALL, sentiment=-0.6) for n in range(10)]
    [story] = assess_stories(
        "marque",
        copies,
        baseline,
        window_start=START,
        window_end=END,
        detection=Detection(),
        baseline_negative_share=0.2,
    )
    assert story.usual_spread == 5.0 and story.needed == 15.0
    assert not story.breaking and not story.alerting


def test_a_positive_story_picked_up_fast_is_noticed_without_alerting() -> None:
    copies = [
        _copy("prize", f"Média {n}", title="La Laiterie Boréale primée", sentiment=0.8)
        for n in range(10)
    ]
    [story] = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=Detection(),
        baseline_negative_share=0.2,
    )
    assert story.breaking and not story.alerting
    assert story.severity.level == "vigilance"


def test_the_settings_move_the_threshold() -> None:
    copies = [_copy("recall", f"Média {n}", title=RECALL, sentiment=-0.6) for n in range(8)]
    strict = Detection(breaking_min_sources=8, breaking_factor=5.0)
    [story] = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=strict,
        baseline_negative_share=0.2,
    )
    assert story.needed == 10.0 and not story.breaking
    copies = copies[:5]
    loose = Detection(breaking_min_sources=5, breaking_factor=2.0)
    [story] = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=loose,
        baseline_negative_share=0.2,
    )
    assert story.needed == 5.0 and story.alerting


def test_a_story_of_two_topics_is_judged_once_where_it_alerts() -> None:
    copies = [_copy("recall", f"Média {n}", title=RECALL, sentiment=-0.6) for n in range(10)]

    def assess(topic: str, baseline: list[int]) -> StoryAssessment:
        [story] = assess_stories(
            topic,
            copies,
            baseline,
            window_start=START,
            window_end=END,
            detection=Detection(),
            baseline_negative_share=0.2,
        )
        return story

    # In "secteur", stories often reach ten sources: not breaking there.
    busy = [10] * 10
    chosen = one_per_story([assess("secteur", busy), assess("marque", _calm_baseline())])
    assert [(s.topic, s.alerting) for s in chosen] == [("marque", True)]


def test_the_settings_refuse_a_minimum_of_one_source() -> None:
    with pytest.raises(ValueError, match="breaking_min_sources"):
        Detection(breaking_min_sources=1)


def test_the_story_email_escapes_the_title_and_links_only_web_addresses(tmp_path: Path) -> None:
    from tasks.notify.emails import render_alert_email
    from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from

    title = "Rappel <script>alert(1)</script> Boréale : listeria\r\nBcc: x@example.org"
    copies = [
        _copy("recall", f"Média {n}", title=title, sentiment=-0.6, minutes=n) for n in range(5)
    ]
    copies.append(
        StoryCopy(
            WindowMention("Piège", "news", 3, title, "", -0.6, "recall"),
            "javascript:alert(2)",
            START + timedelta(minutes=30),
        )
    )
    [story] = assess_stories(
        "marque",
        copies,
        _calm_baseline(),
        window_start=START,
        window_end=END,
        detection=Detection(),
        baseline_negative_share=0.2,
    )
    settings = settings_from(tmp_path, MINIMAL_TOML + CELL_TOML)
    subject, body = render_alert_email(
        settings,
        alert_id="al-1",
        signal=story.signal,
        level=story.severity.level,
        top_mentions=[],
        run_url=None,
        severity=story.severity,
        story=story,
    )
    assert "\n" not in subject and "\r" not in subject and "(6 sources en 60 min)" in subject
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "javascript:" not in body
    assert "<li>Piège</li>" in body  # named, not linked
    assert 'href="https://média-0.example/recall"' in body
