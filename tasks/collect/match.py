"""The Prefect task of matching (`vigie.matching`): keep the mentions a watch query matches."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from vigie.matching import match_mentions
from vigie.models import Mention
from vigie.settings import Watch


@task(name="match-watch-queries", cache_policy=NO_CACHE)
def match_mentions_task(mentions: Sequence[Mention], watches: Sequence[Watch]) -> list[Mention]:
    """Keep the mentions a watch query matches, in the watch's languages."""
    return match_mentions(mentions, watches)
