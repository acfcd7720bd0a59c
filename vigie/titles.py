"""Dedup across outlets by normalised title, as Media Cloud does: the same headline carried by
two outlets within a week is one mention seen in two places.

A title's key is its folded words (case, accents and punctuation ignored, spaces collapsed),
without the trailing " - Outlet" that news search and some feeds append. Only headlines are
compared (news and blog mentions): two people posting the same words on a social network are two
mentions, and a copy-paste campaign must count. A key needs `MIN_TITLE_WORDS` words, so short
generic titles ("Communiqué", "Revue de presse") are never merged.

`merge_same_titles` is the decision, without I/O: the warehouse gives it the keys it holds
(`TitleSighting`), and it says which mention each new one is a copy of.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vigie.models import Mention
from vigie.query import text_words

MIN_TITLE_WORDS = 5
TITLE_WINDOW = timedelta(days=7)
# Platforms whose titles are headlines written once per article.
HEADLINE_PLATFORMS = frozenset({"news", "blog"})


def normalised_title(title: str, outlets: Iterable[str | None] = ()) -> str:
    """The folded words of `title` joined by single spaces, a trailing " - outlet" removed
    when it names one of `outlets` (the mention's author or source)."""
    words = text_words(title)
    # The last " - ", " | ", " – " or " — " (then the outlet), found by plain search: a regex
    # over every title costs twice as much.
    cut = max(title.rfind(" - "), title.rfind(" | "), title.rfind(" – "), title.rfind(" — "))
    if cut > 0:
        tail = _words_of(title[cut + 3 :])
        if tail and any(tail == _words_of(outlet) for outlet in outlets if outlet):
            words = words[: len(words) - len(tail)]
    return " ".join(words)


@functools.lru_cache(maxsize=4096)
def _words_of(name: str) -> tuple[str, ...]:
    """The folded words of an outlet's name (source names and authors repeat)."""
    return text_words(name)


def title_key(mention: Mention) -> str | None:
    """The key two copies of one headline share, or None when the mention is not compared
    (not a headline platform, or too few words to tell an article from a generic title)."""
    if mention.platform not in HEADLINE_PLATFORMS or not isinstance(mention.title, str):
        return None  # a row the warehouse refuses is refused there, with the whole load
    normal = normalised_title(mention.title, (mention.author, mention.source))
    if normal.count(" ") + 1 < MIN_TITLE_WORDS:
        return None
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class TitleSighting:
    """A stored mention's title key and publication time."""

    key: str
    mention_id: str
    published_at: datetime


def merge_same_titles(
    mentions: Sequence[Mention], stored: Iterable[TitleSighting]
) -> list[Mention]:
    """The batch with copies of one headline merged (`merge_keyed`, keys computed here)."""
    return merge_keyed(mentions, [title_key(m) for m in mentions], stored)[0]


def merge_keyed(
    mentions: Sequence[Mention], keys: Sequence[str | None], stored: Iterable[TitleSighting]
) -> tuple[list[Mention], list[str | None]]:
    """The batch with copies of one headline merged, within `TITLE_WINDOW` of each other, and
    the key of each mention kept (`keys[i]` is `title_key(mentions[i])`).

    A mention whose key a stored mention has, published within the window, takes that
    mention's id: loading it then adds its source to the stored mention's sightings and
    counts nothing new. Copies within the batch become one mention, the earliest published
    (the outlet that broke it), whose `seen_in` and `topics` gain the others'. Mentions
    without a key, and mentions sharing an id already (same URL), pass through as they are.
    """
    known: dict[str, list[TitleSighting]] = {}
    for sighting in stored:
        known.setdefault(sighting.key, []).append(sighting)
    order = sorted(
        (i for i, key in enumerate(keys) if key is not None),
        key=lambda i: mentions[i].published_at,
    )
    rekeyed: dict[int, str] = {}  # index -> the stored mention's id it takes
    copies: dict[int, list[int]] = {}  # index of a first copy -> indexes merged into it
    merged: set[int] = set()
    firsts: dict[str, list[int]] = {}  # key -> indexes of the batch's first copies
    for i in order:
        mention, key = mentions[i], keys[i]
        assert key is not None
        if key in known:
            older = _within(known[key], mention.published_at)
            if older is not None:
                if older.mention_id != mention.mention_id:
                    rekeyed[i] = older.mention_id
                continue
        earlier = firsts.get(key)
        if earlier is None:
            firsts[key] = [i]
            continue
        first = next(
            (
                j
                for j in earlier
                if abs(mentions[j].published_at - mention.published_at) <= TITLE_WINDOW
                and mentions[j].mention_id != mention.mention_id
            ),
            None,
        )
        if first is None:
            earlier.append(i)
        else:
            copies.setdefault(first, []).append(i)
            merged.add(i)
    if not rekeyed and not copies:
        return list(mentions), list(keys)
    result: list[Mention] = []
    result_keys: list[str | None] = []
    for i, mention in enumerate(mentions):
        if i in merged:
            continue
        if i in rekeyed:
            mention = replace(mention, mention_id=rekeyed[i])
        elif i in copies:
            others = [mentions[j] for j in copies[i]]
            places = [*mention.seen_in, *(s for o in others for s in (o.source, *o.seen_in))]
            mention = replace(
                mention,
                seen_in=tuple(dict.fromkeys(s for s in places if s != mention.source)),
                topics=tuple(
                    dict.fromkeys([*mention.topics, *(t for o in others for t in o.topics)])
                ),
            )
        result.append(mention)
        result_keys.append(keys[i])
    return result, result_keys


def _within(sightings: Iterable[TitleSighting], published_at: datetime) -> TitleSighting | None:
    """The earliest stored copy published within the window of `published_at`."""
    near = [s for s in sightings if abs(s.published_at - published_at) <= TITLE_WINDOW]
    return min(near, key=lambda s: s.published_at) if near else None
