"""Matching: keep the mentions that at least one watch query matches, tagged with its name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from vigie.models import Mention
from vigie.query import text_words
from vigie.settings import Watch


def match_mentions(mentions: Iterable[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Mentions whose title, summary or author match a watch; `topics` lists which watches."""
    compiled = [(w.name, w.parsed) for w in watches]
    kept: list[Mention] = []
    for mention in mentions:
        words = text_words(f"{mention.title}\n{mention.summary}\n{mention.author or ''}")
        topics = tuple(name for name, query in compiled if query.matches(words))
        if topics:
            kept.append(replace(mention, topics=topics))
    return kept


@task(name="match-watch-queries", cache_policy=NO_CACHE)
def match_mentions_task(mentions: Sequence[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Keep the mentions a watch query matches."""
    return match_mentions(mentions, watches)
