"""Stories: near-duplicate and syndicated copies of one piece of news, across sources and
platforms, grouped under one `story_id` with MinHash signatures and locality-sensitive hashing.

A mention's signature is the MinHash of the content words of its title (accents, case and
stop words ignored). Two mentions whose estimated Jaccard similarity reaches
`SIMILARITY` belong to the same story. New mentions are compared with the stories seen in the
last days (kept in `story_signatures`) and with each other, so a copy published an hour later
on another platform joins the story it copies. Alerts and emails speak of stories, not of
raw mentions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from vigie.models import Mention, StorySignature
from vigie.query import text_words

PERMUTATIONS = 64
BANDS = 16  # 16 bands of 4 rows: pairs above about 0.5 similarity become candidates
ROWS = PERMUTATIONS // BANDS
SIMILARITY = 0.5
_RNG = np.random.default_rng(20261126)  # fixed: signatures must be stable across runs
# Multiply-add with an odd multiplier permutes 64-bit values (arithmetic wraps modulo 2**64).
_A = _RNG.integers(0, 1 << 63, size=PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _RNG.integers(0, 1 << 63, size=PERMUTATIONS, dtype=np.uint64)
_EMPTY = (1 << 64) - 1
STOP_WORDS = frozenset(
    (
        "a au aux avec ce ces dans de des du en et il ils la le les leur mais ne ou par pas pour "
        "qu que qui sa se ses son sur un une the of and to in on for with is are at by from as "
        "an it its be this that"
    ).split()
)


def content_words(text: str) -> set[str]:
    return {w for w in text_words(text) if len(w) > 2 and w not in STOP_WORDS}


def minhash(words: Iterable[str]) -> tuple[int, ...]:
    """The MinHash signature of a set of words (empty set: all maxima)."""
    hashes = np.array(
        [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "big") for w in words],
        dtype=np.uint64,
    )
    if hashes.size == 0:
        return tuple([_EMPTY] * PERMUTATIONS)
    with np.errstate(over="ignore"):
        mixed = hashes[:, None] * _A[None, :] + _B[None, :]
    return tuple(int(v) for v in mixed.min(axis=0))


def similarity(first: Sequence[int], second: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the word sets behind two signatures."""
    return sum(1 for a, b in zip(first, second, strict=True) if a == b) / PERMUTATIONS


def _bands(signature: Sequence[int]) -> list[tuple[int, tuple[int, ...]]]:
    return [(band, tuple(signature[band * ROWS : (band + 1) * ROWS])) for band in range(BANDS)]


def assign_stories(
    mentions: Sequence[Mention], recent: Sequence[StorySignature]
) -> tuple[list[Mention], list[StorySignature]]:
    """Give each mention the story it copies (a recent one or an earlier one of the batch).

    Returns the mentions with their `story_id` set and the signatures of new stories.
    """
    index: dict[tuple[int, tuple[int, ...]], list[StorySignature]] = {}
    for story in recent:
        for key in _bands(story.signature):
            index.setdefault(key, []).append(story)
    assigned: list[Mention] = []
    new_stories: list[StorySignature] = []
    for mention in mentions:
        words = content_words(mention.title)
        if len(words) < 3:
            assigned.append(mention)  # too short to compare: its own story
            continue
        signature = minhash(words)
        best: StorySignature | None = None
        best_score = SIMILARITY
        for key in _bands(signature):
            for candidate in index.get(key, ()):
                score = similarity(signature, candidate.signature)
                if score >= best_score:
                    best, best_score = candidate, score
        if best is None:
            best = StorySignature(mention.story_id, signature)
            new_stories.append(best)
            for key in _bands(signature):
                index.setdefault(key, []).append(best)
        assigned.append(replace(mention, story_id=best.story_id))
    return assigned, new_stories
