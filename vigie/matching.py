"""Matching: which watch queries a mention matches, in the watch's languages.

A watch with `languages` also needs the mention's language to be one of them, or unknown. The
language is the source's or the feed's; when neither says and such a watch's query matches, it is
detected here (as enrichment would), so a French-only watch does not keep an English post.
No Prefect here: the parsing workers of `tasks.collect.normalise` match as they parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from vigie.models import Mention
from vigie.query import Node, text_words

if TYPE_CHECKING:
    from vigie.settings import Watch

SUMMARY_CHARS = 280  # the lead says what the item is about; the rest adds noise and time


def language_text(mention: Mention) -> str:
    """What language and sentiment are read from: the title and the lead of the summary."""
    return f"{mention.title}. {mention.summary[:SUMMARY_CHARS]}".strip()


# A watch ready to match: its name, its parsed query, its languages (None: any).
CompiledWatch = tuple[str, Node, frozenset[str] | None]


def compile_watches(watches: Sequence[Watch]) -> list[CompiledWatch]:
    """The watches as `match_one` reads them."""
    return [
        (w.name, w.parsed, None if w.languages is None else frozenset(w.languages)) for w in watches
    ]


def match_one(mention: Mention, compiled: Sequence[CompiledWatch]) -> Mention | None:
    """The mention with `topics` set to the watches it matches, or None when it matches none.

    A mention whose language had to be detected comes back with it.
    """
    words = text_words(f"{mention.title}\n{mention.summary}\n{mention.author or ''}")
    topics: list[str] = []
    detected = mention.language is not None
    for name, query, languages in compiled:
        if not query.matches(words):
            continue
        if languages is not None:
            if not detected:
                # Only for mentions a language-restricted query matched: detection is slow,
                # and its models are loaded then (parsing workers start without them).
                from vigie.sentiment import detect_language

                found = detect_language(language_text(mention))
                mention = replace(mention, language=found if found in ("fr", "en") else None)
                detected = True
            if mention.language is not None and mention.language not in languages:
                continue
        topics.append(name)
    return replace(mention, topics=tuple(topics)) if topics else None


def match_mentions(mentions: Iterable[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Mentions whose title, summary or author match a watch; `topics` lists which watches."""
    compiled = compile_watches(watches)
    return [hit for mention in mentions if (hit := match_one(mention, compiled)) is not None]
