"""Story clustering with MinHash/LSH: copies join, distinct news stay apart."""

from __future__ import annotations

from datetime import UTC, datetime

from tasks.enrich.stories import assign_stories, content_words, minhash, similarity
from vigie.models import Mention, StorySignature

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _m(n: int, title: str, source: str = "Le Quotidien") -> Mention:
    return Mention(
        f"m{n}",
        source,
        "news",
        1,
        f"https://q.example/{n}",
        title,
        "",
        None,
        NOW,
        NOW,
        "fr",
        f"own-{n}",
        ("marque",),
    )


def test_similarity_estimates_the_jaccard_of_content_words() -> None:
    a = content_words("Rappel de fromages de la Laiterie Boréale : risque de listeria")
    b = content_words(
        "Rappel de fromages de la Laiterie Boréale - risque de listéria (mise à jour)"
    )
    exact = len(a & b) / len(a | b)
    assert abs(similarity(minhash(a), minhash(b)) - exact) < 0.2
    assert minhash(a) == minhash(set(a))  # deterministic


def test_a_syndicated_copy_joins_the_story_of_the_original() -> None:
    mentions = [
        _m(1, "Rappel de fromages de la Laiterie Boréale : risque de listeria"),
        _m(2, "Rappel de fromages de la Laiterie Boréale – risque de listéria", "Radio"),
        _m(3, "La Laiterie Boréale agrandit son usine de Saguenay"),
    ]
    assigned, new = assign_stories(mentions, [])
    assert assigned[0].story_id == assigned[1].story_id == "own-1"
    assert assigned[2].story_id == "own-3"
    assert [s.story_id for s in new] == ["own-1", "own-3"]


def test_a_later_copy_joins_a_story_seen_in_an_earlier_cycle() -> None:
    earlier = StorySignature(
        "story-earlier",
        minhash(content_words("Boycott de la Laiterie Boréale : l'appel circule sur les réseaux")),
    )
    assigned, new = assign_stories(
        [_m(4, "L'appel au boycott de la Laiterie Boréale circule sur les réseaux", "Forum")],
        [earlier],
    )
    assert assigned[0].story_id == "story-earlier" and new == []


def test_a_title_too_short_to_compare_keeps_its_own_story() -> None:
    assigned, new = assign_stories([_m(5, "Boréale ?")], [])
    assert assigned[0].story_id == "own-5" and new == []
