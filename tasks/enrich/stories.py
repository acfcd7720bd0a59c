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
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from operator import eq

import numpy as np
import numpy.typing as npt

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
_CHUNK = 2048  # sets of words hashed together: bounds the memory of minhash_matrix
_FEW_CANDIDATES = 16  # beyond, one numpy comparison scores the candidate stories sooner
STOP_WORDS = frozenset(
    (
        "a au aux avec ce ces dans de des du en et il ils la le les leur mais ne ou par pas pour "
        "qu que qui sa se ses son sur un une the of and to in on for with is are at by from as "
        "an it its be this that"
    ).split()
)


def content_words(text: str) -> set[str]:
    return {w for w in text_words(text) if len(w) > 2 and w not in STOP_WORDS}


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")


def minhash_matrix(word_sets: Sequence[Collection[str]]) -> npt.NDArray[np.uint64]:
    """The MinHash signatures of several sets of words, one row each (empty set: all maxima).

    Each distinct word is hashed once; the permutations and minima are computed by numpy for a
    chunk of sets at a time (a row per word would take 512 bytes for every word of the batch).
    """
    signatures = np.full((len(word_sets), PERMUTATIONS), _EMPTY, dtype=np.uint64)
    hashed: dict[str, int] = {}
    for start in range(0, len(word_sets), _CHUNK):
        rows = [i for i in range(start, min(start + _CHUNK, len(word_sets))) if word_sets[i]]
        if not rows:
            continue
        sizes = np.array([len(word_sets[i]) for i in rows])
        words = [w for i in rows for w in word_sets[i]]
        hashed.update((w, _word_hash(w)) for w in set(words).difference(hashed))
        hashes = np.array([hashed[w] for w in words], dtype=np.uint64)
        # One row per permutation: the minima of each set are then contiguous, twice as quick.
        with np.errstate(over="ignore"):
            mixed = _A[:, None] * hashes[None, :] + _B[:, None]
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        signatures[rows] = np.minimum.reduceat(mixed, starts, axis=1).T
    return signatures


def minhash(words: Iterable[str]) -> tuple[int, ...]:
    """The MinHash signature of a set of words (empty set: all maxima)."""
    return tuple(minhash_matrix([list(words)])[0].tolist())


def similarity(first: Sequence[int], second: Sequence[int]) -> float:
    """Estimated Jaccard similarity of the word sets behind two signatures."""
    return sum(1 for a, b in zip(first, second, strict=True) if a == b) / PERMUTATIONS


def _band_keys(signatures: npt.NDArray[np.uint64]) -> list[list[bytes]]:
    """Each signature's bands as bytes (equal bytes: equal rows), one list per signature."""
    bands = np.ascontiguousarray(signatures).view(np.dtype((np.void, ROWS * 8)))
    keys: list[list[bytes]] = bands.tolist()
    return keys


def assign_stories(
    mentions: Sequence[Mention], recent: Sequence[StorySignature]
) -> tuple[list[Mention], list[StorySignature]]:
    """Give each mention the story it copies (a recent one or an earlier one of the batch).

    Returns the mentions with their `story_id` set and the signatures of new stories.
    """
    # Syndicated copies repeat titles: each distinct title is cut into words and hashed once.
    rows: dict[str, int] = {}
    word_sets: list[set[str]] = []
    repeated: set[int] = set()
    for mention in mentions:
        if mention.title in rows:
            repeated.add(rows[mention.title])
        else:
            rows[mention.title] = len(word_sets)
            word_sets.append(content_words(mention.title))
    signatures = minhash_matrix(word_sets)
    as_tuples = [tuple(signature) for signature in signatures.tolist()]  # as stored: Python ints
    keys = _band_keys(signatures)
    # Every story known so far (recent ones, then the batch's new ones), one row each.
    stories: list[StorySignature] = list(recent)
    known = np.empty((len(recent) + len(word_sets), PERMUTATIONS), dtype=np.uint64)
    if recent:
        known[: len(recent)] = np.array([story.signature for story in recent], dtype=np.uint64)
    # One index per band: the stories whose band has these values, in the order they came.
    index: list[dict[bytes, list[int]]] = [{} for _ in range(BANDS)]
    for story, story_keys in enumerate(_band_keys(known[: len(recent)])):
        for band, key in enumerate(story_keys):
            index[band].setdefault(key, []).append(story)
    # A repeated title's best story, kept until a story sharing one of its bands is added (the
    # only thing that can change the answer); `holders` tells which titles have each band value.
    found: dict[int, int | None] = {}
    holders: list[dict[bytes, list[int]]] = [{} for _ in range(BANDS)]
    for row in repeated:
        for band, key in enumerate(keys[row]):
            holders[band].setdefault(key, []).append(row)
    assigned: list[Mention] = []
    new_stories: list[StorySignature] = []
    for mention in mentions:
        row = rows[mention.title]
        if len(word_sets[row]) < 3:
            assigned.append(mention)  # too short to compare: its own story
            continue
        if row in found:
            best = found[row]
        else:
            best = _best_story(stories, known, index, as_tuples[row], keys[row])
            if row in repeated:
                found[row] = best
        if best is None:
            best = len(stories)
            known[best] = signatures[row]
            stories.append(StorySignature(mention.story_id, as_tuples[row]))
            new_stories.append(stories[best])
            for band, key in enumerate(keys[row]):
                index[band].setdefault(key, []).append(best)
                for holder in holders[band].get(key, ()):
                    found.pop(holder, None)
        story_id = stories[best].story_id
        assigned.append(
            mention if mention.story_id == story_id else replace(mention, story_id=story_id)
        )
    return assigned, new_stories


def _best_story(
    stories: Sequence[StorySignature],
    known: npt.NDArray[np.uint64],
    index: list[dict[bytes, list[int]]],
    signature: tuple[int, ...],
    keys: list[bytes],
) -> int | None:
    """The story most similar to `signature` among those sharing a band with it, if similar
    enough; between equals, the last one met, band after band (`known`: the stories' rows)."""
    candidates = [story for band, key in enumerate(keys) for story in index[band].get(key, ())]
    if not candidates:
        return None
    # A story sharing several bands is met several times: score it once.
    distinct = list(dict.fromkeys(candidates))
    if len(distinct) > _FEW_CANDIDATES:
        equal = known[distinct] == np.array(signature, dtype=np.uint64)
        counts = dict(zip(distinct, np.count_nonzero(equal, axis=1).tolist(), strict=True))
    else:
        # numpy costs microseconds a call: on a few candidates, plain comparisons are sooner.
        counts = {story: sum(map(eq, signature, stories[story].signature)) for story in distinct}
    top = max(counts.values())
    if top / PERMUTATIONS < SIMILARITY:
        return None
    return next(story for story in reversed(candidates) if counts[story] == top)
