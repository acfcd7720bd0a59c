"""The vectorised story clustering gives exactly the stories and the stored signatures of the
implementation it replaced, kept here as the oracle: on generated batches of near-duplicate
titles (copies, rewordings, short titles, ties between equally similar stories), with and without
the recent stories of earlier cycles."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.enrich.stories import assign_stories, content_words, minhash, minhash_matrix, similarity
from vigie.models import Mention, StorySignature

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

# --- the oracle: minhash and assign_stories as they were before numpy did the work ------------

PERMUTATIONS, BANDS, ROWS, SIMILARITY = 64, 16, 4, 0.5
_RNG = np.random.default_rng(20261126)
_A = _RNG.integers(0, 1 << 63, size=PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _RNG.integers(0, 1 << 63, size=PERMUTATIONS, dtype=np.uint64)
_EMPTY = (1 << 64) - 1


def oracle_minhash(words: Iterable[str]) -> tuple[int, ...]:
    hashes = np.array(
        [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "big") for w in words],
        dtype=np.uint64,
    )
    if hashes.size == 0:
        return tuple([_EMPTY] * PERMUTATIONS)
    with np.errstate(over="ignore"):
        mixed = hashes[:, None] * _A[None, :] + _B[None, :]
    return tuple(int(v) for v in mixed.min(axis=0))


def oracle_similarity(first: Sequence[int], second: Sequence[int]) -> float:
    return sum(1 for a, b in zip(first, second, strict=True) if a == b) / PERMUTATIONS


def _oracle_bands(signature: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    return [(band, tuple(signature[band * ROWS : (band + 1) * ROWS])) for band in range(BANDS)]


def oracle_assign_stories(
    mentions: Sequence[Mention], recent: Sequence[StorySignature]
) -> tuple[list[Mention], list[StorySignature]]:
    index: dict[tuple[int, tuple[int, ...]], list[StorySignature]] = {}
    for story in recent:
        for key in _oracle_bands(story.signature):
            index.setdefault(key, []).append(story)
    assigned: list[Mention] = []
    new_stories: list[StorySignature] = []
    for mention in mentions:
        words = content_words(mention.title)
        if len(words) < 3:
            assigned.append(mention)
            continue
        signature = oracle_minhash(words)
        best: StorySignature | None = None
        best_score = SIMILARITY
        for key in _oracle_bands(signature):
            for candidate in index.get(key, ()):
                score = oracle_similarity(signature, candidate.signature)
                if score >= best_score:
                    best, best_score = candidate, score
        if best is None:
            best = StorySignature(mention.story_id, signature)
            new_stories.append(best)
            for key in _oracle_bands(signature):
                index.setdefault(key, []).append(best)
        assigned.append(replace(mention, story_id=best.story_id))
    return assigned, new_stories


# --- generated batches ------------------------------------------------------------------------

VOCABULARY = (
    "rappel fromages laiterie boréale risque listeria usine saguenay boycott appel réseaux "
    "grève employés direction acme renewables énergies acmé rapport transition critique "
    "director named report energy recall cheese strike union montréal québec enquête ministre "
    "sanction amende pollution rivière village maire conseil"
).split()
FILLERS = ("de", "la", "le", "the", "of", ":", "–", "«", "»", "?", "!", "(mise à jour)")


def _mention(n: int, title: str) -> Mention:
    return Mention(
        f"m{n}", "Source", "news", 1, f"https://q.example/{n}", title, "", None, NOW, NOW, "fr",
        f"own-{n}", ("marque",),
    )  # fmt: skip


def _respell(word: str, rng: random.Random) -> str:
    return rng.choice((word, word.upper(), word.capitalize(), word.replace("é", "e")))


def generated_titles(rng: random.Random, count: int) -> list[str]:
    """Titles of a few pieces of news, each copied as it is or reworded by a word or two."""
    originals = [rng.sample(VOCABULARY, rng.randint(3, 9)) for _ in range(rng.randint(1, 8))]
    titles = []
    for _ in range(count):
        words = list(rng.choice(originals))
        kind = rng.random()
        if kind < 0.1:
            words = words[: rng.randint(0, 2)]  # too short to compare
        elif kind < 0.2:
            words = rng.sample(VOCABULARY, rng.randint(3, 9))  # news of its own
        elif kind < 0.7:
            for _ in range(rng.randint(1, 3)):  # reworded: a word dropped, swapped or added
                edit = rng.random()
                if edit < 0.33 and len(words) > 1:
                    words.pop(rng.randrange(len(words)))
                elif edit < 0.66:
                    words[rng.randrange(len(words))] = rng.choice(VOCABULARY)
                else:
                    words.insert(rng.randrange(len(words) + 1), rng.choice(VOCABULARY))
        spelled = [_respell(w, rng) for w in words]
        for _ in range(rng.randint(0, 3)):
            spelled.insert(rng.randrange(len(spelled) + 1), rng.choice(FILLERS))
        titles.append(" ".join(spelled))
    return titles


def generated_recent(rng: random.Random) -> list[StorySignature]:
    """The stories of an earlier cycle, some stored twice under another id (equal scores)."""
    earlier = [_mention(10_000 + i, t) for i, t in enumerate(generated_titles(rng, 30))]
    stories = oracle_assign_stories(earlier, [])[1]
    twins = [
        StorySignature(f"twin-{s.story_id}", s.signature) for s in stories if rng.random() < 0.5
    ]
    recent = stories + twins
    rng.shuffle(recent)
    return recent


def _check_same_as_oracle(mentions: list[Mention], recent: list[StorySignature]) -> None:
    assigned, new = assign_stories(mentions, recent)
    expected_assigned, expected_new = oracle_assign_stories(mentions, recent)
    assert assigned == expected_assigned
    assert new == expected_new
    # Stored as they were: a tuple of 64 Python ints (a UBIGINT[] column).
    for story in new:
        assert type(story.signature) is tuple and len(story.signature) == PERMUTATIONS
        assert all(type(value) is int for value in story.signature)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.booleans())
def test_stories_are_those_of_the_former_implementation(
    seed: int, count: int, with_recent: bool
) -> None:
    rng = random.Random(seed)
    recent = generated_recent(rng) if with_recent else []
    mentions = [_mention(i, title) for i, title in enumerate(generated_titles(rng, count))]
    _check_same_as_oracle(mentions, recent)


def test_a_large_batch_clusters_as_the_former_implementation_did_cycle_after_cycle() -> None:
    """Three cycles of 1,500 mentions, each seeing the stories of the ones before."""
    rng = random.Random(20261126)
    recent: list[StorySignature] = []
    for cycle in range(3):
        titles = generated_titles(rng, 1500)
        mentions = [_mention(cycle * 10_000 + i, title) for i, title in enumerate(titles)]
        _check_same_as_oracle(mentions, recent)
        recent = recent + oracle_assign_stories(mentions, recent)[1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sets(st.text(max_size=12), max_size=12), max_size=12))
def test_signatures_are_those_of_the_former_implementation(word_sets: list[set[str]]) -> None:
    signatures = minhash_matrix(word_sets)
    for words, row in zip(word_sets, signatures, strict=True):
        assert minhash(words) == tuple(row.tolist()) == oracle_minhash(words)
        assert all(type(value) is int for value in minhash(words))


def test_signatures_stored_in_existing_warehouses_keep_their_values() -> None:
    """Values computed before this change: a new value would split every stored story."""
    signature = minhash({"laiterie", "boreale", "rappel"})
    assert signature[:3] == (4960764815508640622, 4013820087862260186, 4229843379350362159)
    assert similarity(signature, oracle_minhash({"laiterie", "boreale", "rappel"})) == 1.0
