"""Enrichment: the language and sentiment of each matched mention, offline.

Language comes from the source's configuration, else from py3langid (model inside the wheel);
text under about 20 characters is "undetermined". Sentiment comes from the bundled French and
English models (`vigie.sentiment`), on the title and the start of the summary; undetermined text
gets the average of both models. The score in [-1, 1] goes to `mentions.sentiment` and, as a
label, to the aggregates negativity is measured on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from vigie.matching import language_text
from vigie.models import Mention
from vigie.sentiment import _language_identifier, detect_language, load_model, score_texts


def warm_up() -> threading.Thread:
    """Load the sentiment models and the language identifier in a thread (a cycle starts this
    while it fetches); errors are left for enrichment to raise."""

    def load() -> None:
        try:
            load_model("fr")
            load_model("en")
            _language_identifier()
        except Exception:  # raised again by the enrichment itself
            return

    thread = threading.Thread(target=load, name="sentiment-warm-up", daemon=True)
    thread.start()
    return thread


def enrich_mentions(mentions: Sequence[Mention]) -> list[Mention]:
    """Mentions with a language (when it can be told) and a sentiment score."""
    if not mentions:
        return []
    texts = [language_text(m) for m in mentions]
    languages = [
        m.language or detect_language(text) for m, text in zip(mentions, texts, strict=True)
    ]
    enriched = list(mentions)
    for lang in ("fr", "en", "und"):
        indices = [i for i, found in enumerate(languages) if found == lang]
        if not indices:
            continue
        results = score_texts([texts[i] for i in indices], "auto" if lang == "und" else lang)
        for i, result in zip(indices, results, strict=True):
            enriched[i] = replace(
                mentions[i],
                language=lang if lang in ("fr", "en") else None,
                sentiment=round(result.score, 4),
            )
    return enriched


@task(name="enrich", cache_policy=NO_CACHE)
def enrich_mentions_task(mentions: Sequence[Mention]) -> list[Mention]:
    """Detect each mention's language and score its sentiment, offline."""
    return enrich_mentions(mentions)
