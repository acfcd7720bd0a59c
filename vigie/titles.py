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

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from vigie.models import Mention
from vigie.query import text_words

MIN_TITLE_WORDS = 5
TITLE_WINDOW = timedelta(days=7)
# Platforms whose titles are headlines written once per article.
HEADLINE_PLATFORMS = frozenset({"news", "blog"})
# " - Le Monde", " | Le Monde", " – Le Monde", " — Le Monde": the outlet after the headline.
_OUTLET_SEPARATOR = re.compile(r"\s+[-|–—]\s+")


def normalised_title(title: str, outlets: Iterable[str | None] = ()) -> str:
    """The folded words of `title` joined by single spaces, a trailing " - outlet" removed
    when it names one of `outlets` (the mention's author or source)."""
    words = text_words(title)
    parts = _OUTLET_SEPARATOR.split(title)
    if len(parts) > 1:
        tail = text_words(parts[-1])
        names = {text_words(outlet) for outlet in outlets if outlet}
        if tail and tail in names:
            words = words[: len(words) - len(tail)]
    return " ".join(words)


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
    """The batch with copies of one headline merged, within `TITLE_WINDOW` of each other.

    A mention whose key a stored mention has, published within the window, takes that
    mention's id: loading it then adds its source to the stored mention's sightings and
    counts nothing new. Copies within the batch become one mention, the earliest published
    (the outlet that broke it), whose `seen_in` and `topics` gain the others'. Mentions
    without a key, and mentions sharing an id already (same URL), pass through as they are.
    """
    known: dict[str, list[TitleSighting]] = {}
    for sighting in stored:
        known.setdefault(sighting.key, []).append(sighting)
    keys = [title_key(m) for m in mentions]
    order = sorted(
        (i for i, key in enumerate(keys) if key is not None),
        key=lambda i: mentions[i].published_at,
    )
    kept: dict[int, Mention] = {}  # index -> the mention at that index, merged
    copy_of: dict[int, int] = {}  # index of a copy -> index of the mention it merges into
    firsts: dict[str, list[int]] = {}  # key -> indexes of the batch's first copies
    for i in order:
        mention, key = mentions[i], keys[i]
        assert key is not None
        older = _within(known.get(key, ()), mention.published_at)
        if older is not None:
            if older.mention_id != mention.mention_id:
                kept[i] = replace(mention, mention_id=older.mention_id)
            continue
        first = next(
            (
                j
                for j in firsts.get(key, ())
                if abs(mentions[j].published_at - mention.published_at) <= TITLE_WINDOW
                and mentions[j].mention_id != mention.mention_id
            ),
            None,
        )
        if first is None:
            firsts.setdefault(key, []).append(i)
            continue
        copy_of[i] = first
        into = kept.get(first, mentions[first])
        places = (mention.source, *mention.seen_in)
        kept[first] = replace(
            into,
            seen_in=tuple(dict.fromkeys(s for s in (*into.seen_in, *places) if s != into.source)),
            topics=tuple(dict.fromkeys((*into.topics, *mention.topics))),
        )
    return [kept.get(i, m) for i, m in enumerate(mentions) if i not in copy_of]


def _within(sightings: Iterable[TitleSighting], published_at: datetime) -> TitleSighting | None:
    """The earliest stored copy published within the window of `published_at`."""
    near = [s for s in sightings if abs(s.published_at - published_at) <= TITLE_WINDOW]
    return min(near, key=lambda s: s.published_at) if near else None
