"""Crisis signals and the severity that combines them (plain functions, no I/O)."""

from __future__ import annotations

import pytest

from tasks.detect.signals import (
    CRISIS_LEXICON,
    MEMO_TEXTS,
    _scanner_of,
    assess_severity,
    crisis_terms,
    level_for,
    negativity_signal,
    pickup_signal,
    spread_signal,
    vocabulary_signal,
)
from vigie.models import WindowMention


def _m(
    title: str,
    *,
    sentiment: float | None = None,
    tier: int = 3,
    platform: str = "news",
    source: str = "s1",
) -> WindowMention:
    return WindowMention(source, platform, tier, title, "", sentiment, title[:10])


def test_crisis_terms_match_accents_prefixes_and_phrases() -> None:
    found = crisis_terms("RAPPEL de fromages : intoxications, fuite de données")
    assert set(found) == {"rappel*", "intoxication*", "fuite de donnees"}


def test_crisis_terms_ignore_ordinary_words() -> None:
    assert crisis_terms("La Laiterie Boréale ouvre une nouvelle fromagerie") == {}


def test_vocabulary_counts_the_strongest_term_of_each_mention() -> None:
    signal, counts = vocabulary_signal([_m("Boycott !"), _m("Belle journée"), _m("Scandale")])
    assert signal == pytest.approx(min(1.0, (1.0 + 0 + 1.0) / 3 * 1.5))
    assert counts == {"boycott*": 1, "scandale*": 1, "scandal*": 1}


def test_negativity_needs_a_minimum_of_negative_mentions() -> None:
    few = [_m("a", sentiment=-0.8), _m("b", sentiment=-0.7), _m("c", sentiment=0.2)]
    assert negativity_signal(few, baseline_share=0.1)[0] == 0.0
    many = [*few, _m("d", sentiment=-0.9)]
    signal, negative, share = negativity_signal(many, baseline_share=0.1)
    assert negative == 3 and share == 0.75 and signal == pytest.approx((0.75 - 0.1) / 0.9)


def test_negativity_is_measured_against_its_baseline() -> None:
    mentions = [_m(str(i), sentiment=-0.5) for i in range(4)] + [_m("x", sentiment=0.5)]
    assert negativity_signal(mentions, baseline_share=0.8)[0] == 0.0


def test_pickup_needs_a_tier_one_outlet() -> None:
    assert pickup_signal([_m("a", tier=2)]) == (0.0, [])
    assert pickup_signal([_m("a", tier=1, source="Le Quotidien")]) == (1.0, ["Le Quotidien"])


def test_spread_grows_with_platforms_and_sources() -> None:
    one = spread_signal([_m("a")])
    three = spread_signal(
        [
            _m("a", platform="news"),
            _m("b", platform="forum", source="s2"),
            _m("c", platform="social", source="s3"),
        ]
    )
    assert one == (0.0, 1, 1) and three == (1.0, 3, 3)


def test_a_popular_positive_campaign_is_not_an_alert() -> None:
    mentions = [
        _m(
            f"Bravo à la Laiterie Boréale pour sa campagne {i}",
            sentiment=0.8,
            tier=1,
            platform=p,
            source=f"s{i}",
        )
        for i, p in enumerate(["news", "social", "forum", "blog"] * 5)
    ]
    severity = assess_severity(
        mentions, volume_score=1.0, enough_volume=True, baseline_negative_share=0.1
    )
    assert severity.level == "vigilance"
    assert severity.contributions["pickup"] == 0 and severity.contributions["spread"] == 0


def test_a_negative_viral_story_picked_up_by_a_major_outlet_is_a_crisis() -> None:
    mentions = [
        _m(
            f"Scandale : rappel de fromages {i}",
            sentiment=-0.8,
            tier=1 if i == 0 else 3,
            platform=p,
            source=f"s{i}",
        )
        for i, p in enumerate(["news", "social", "forum"] * 4)
    ]
    severity = assess_severity(
        mentions, volume_score=0.9, enough_volume=True, baseline_negative_share=0.1
    )
    assert severity.level == "crise"
    assert severity.score == pytest.approx(sum(severity.contributions.values()), abs=0.5)
    assert severity.evidence["major_outlets"] == ["s0"]
    assert severity.evidence["sources_per_hour"] == 12.0


def test_too_few_mentions_never_raise_the_level() -> None:
    severity = assess_severity(
        [_m("Scandale", sentiment=-0.9)],
        volume_score=1.0,
        enough_volume=False,
        baseline_negative_share=0.0,
    )
    assert severity.level == "veille" and severity.score == 0.0


@pytest.mark.parametrize(
    ("score", "sensitivity", "level"),
    [
        (44.0, "medium", "vigilance"),
        (45.0, "medium", "alerte"),
        (36.0, "high", "alerte"),
        (50.0, "low", "vigilance"),
        (70.0, "medium", "crise"),
        (10.0, "high", "veille"),
    ],
)
def test_sensitivity_moves_the_level_thresholds(score: float, sensitivity: str, level: str) -> None:
    assert level_for(score, sensitivity) == level  # type: ignore[arg-type]


def test_the_terms_remembered_per_text_are_bounded_and_stay_right() -> None:
    """Detection reads a window's texts for the topic, then for each story: the terms of each
    text are remembered, but not without bound (the memo holds on to the texts)."""
    scanner = _scanner_of(tuple(CRISIS_LEXICON.items()))
    for n in range(MEMO_TEXTS + 10):
        assert scanner.terms_of(f"Rappel numéro {n}", "") == {"rappel*": 0.8}
        assert len(scanner.memo) <= MEMO_TEXTS
    assert scanner.terms_of("Grève", "boycott") == {"boycott*": 1.0, "greve*": 0.7}
    assert scanner.terms_of("Une journée calme", "") == {}
