"""Matching: keep the mentions that at least one watch query matches, tagged with its name.

A watch with `languages` also needs the mention's language to be one of them, or unknown. The
language is the source's or the feed's; when neither says and such a watch's query matches, it is
detected here (as enrichment would), so a French-only watch does not keep an English post.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.enrich import language_text
from vigie.models import Mention
from vigie.query import text_words
from vigie.sentiment import detect_language
from vigie.settings import Watch


def match_mentions(mentions: Iterable[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Mentions whose title, summary or author match a watch; `topics` lists which watches.

    A mention whose language had to be detected comes back with it.
    """
    compiled = [
        (w.name, w.parsed, None if w.languages is None else frozenset(w.languages)) for w in watches
    ]
    kept: list[Mention] = []
    for mention in mentions:
        words = text_words(f"{mention.title}\n{mention.summary}\n{mention.author or ''}")
        topics: list[str] = []
        detected = mention.language is not None
        for name, query, languages in compiled:
            if not query.matches(words):
                continue
            if languages is not None:
                if not detected:
                    # Only for mentions a language-restricted query matched: detection is slow.
                    found = detect_language(language_text(mention))
                    mention = replace(mention, language=found if found in ("fr", "en") else None)
                    detected = True
                if mention.language is not None and mention.language not in languages:
                    continue
            topics.append(name)
        if topics:
            kept.append(replace(mention, topics=tuple(topics)))
    return kept


@task(name="match-watch-queries", cache_policy=NO_CACHE)
def match_mentions_task(mentions: Sequence[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Keep the mentions a watch query matches, in the watch's languages."""
    return match_mentions(mentions, watches)
