"""`vigie query test`: what a query matches, and what it misses, in the mentions already stored.

For someone tuning a query. Each stored mention of the window is matched as the watch cycle
matches it (title, summary and author, `vigie.query`), and judged:

- matched, with the query's terms found in it;
- a near miss: not matched, but it holds some of the query's terms (`has boreale; lacks
  rappel*`), or the query without its NOTs would match it (`excluded by NOT recrutement`), or
  both sides of a NEAR are there but too far apart.

Beside that: how many mentions hold each term (which term brings what), and for each configured
watch, how many of its stored mentions this query matches too (what replacing or adding it would
keep). The warehouse keeps only what a configured watch matched, so a query is tried on those;
`vigie sources test` shows what the sources carry today.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from tasks.notify.emails import header_safe
from vigie.query import And, Near, Node, Not, Or, Term, render_query, text_words
from warehouse.mention_texts import StoredText

# The newest mentions of the window tried at most: about 0.3 ms each on a busy 2-core machine.
MAX_TESTED = 100_000
MAX_TITLE_CHARS = 90
MAX_SOURCE_CHARS = 24


@dataclass(frozen=True, slots=True)
class QueryTerms:
    """The terms of a query: those that count towards a match, and those under a NOT."""

    positive: tuple[Term, ...]
    negative: tuple[Term, ...]


def query_terms(node: Node) -> QueryTerms:
    """Every distinct term of the query, in order, split by whether a NOT is above it."""
    positive: dict[Term, None] = {}
    negative: dict[Term, None] = {}

    def walk(n: Node, negated: bool) -> None:
        if isinstance(n, Term):
            (negative if negated else positive)[n] = None
        elif isinstance(n, Not):
            walk(n.operand, not negated)
        elif isinstance(n, And | Or):
            for op in n.operands:
                walk(op, negated)
        else:
            walk(n.left, negated)
            walk(n.right, negated)

    walk(node, False)
    return QueryTerms(tuple(positive), tuple(negative))


def _matches_without_not(node: Node, words: tuple[str, ...]) -> bool:
    """Whether the query would match if its NOT parts were left out."""
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_matches_without_not(op, words) for op in node.operands)
    if isinstance(node, Or):
        return any(_matches_without_not(op, words) for op in node.operands)
    return node.matches(words)  # a Term, or a NEAR (which holds no NOT)


def _near_too_far(node: Node, words: tuple[str, ...]) -> bool:
    """Whether some NEAR of the query has both sides in the text, but not close enough."""
    if isinstance(node, Near):
        return node.left.matches(words) and node.right.matches(words) and not node.matches(words)
    if isinstance(node, Not):
        return _near_too_far(node.operand, words)
    if isinstance(node, And | Or):
        return any(_near_too_far(op, words) for op in node.operands)
    return False


@dataclass(frozen=True, slots=True)
class Judged:
    """One stored mention against the query."""

    text: StoredText
    matched: bool
    found: tuple[str, ...]  # positive terms in the text, as written in a query
    missing: tuple[str, ...]  # positive terms not in it
    negative: tuple[str, ...]  # terms under a NOT that are in the text
    excluded_by: tuple[str, ...]  # those of them that are why it is not matched
    too_far: bool  # a NEAR's two sides are in it, too far apart

    @property
    def near_miss(self) -> bool:
        return not self.matched and bool(self.found or self.excluded_by)

    def why(self) -> str:
        """Why a near miss was not matched, in a few words."""
        parts = []
        if self.excluded_by:
            parts.append("excluded by NOT " + ", NOT ".join(self.excluded_by))
        if self.found and not self.excluded_by:
            parts.append("has " + ", ".join(self.found))
            if self.missing:
                parts.append("lacks " + ", ".join(self.missing))
        if self.too_far:
            parts.append("NEAR: too far apart")
        return "; ".join(parts)


def judge(node: Node, terms: QueryTerms, text: StoredText) -> Judged:
    """Match one stored mention as the watch cycle does, and say which terms it holds."""
    words = text_words(f"{text.title}\n{text.summary}\n{text.author or ''}")
    matched = node.matches(words)
    held = {t for t in (*terms.positive, *terms.negative) if t.matches(words)}
    found = tuple(_name(t) for t in terms.positive if t in held)
    missing = tuple(_name(t) for t in terms.positive if t not in held)
    negative = tuple(_name(t) for t in terms.negative if t in held)
    excluded_by = negative if negative and not matched and _matches_without_not(node, words) else ()
    # Both sides of a NEAR hold a term at least: two terms found, or one on both sides.
    too_far = not matched and bool(found) and _near_too_far(node, words)
    return Judged(text, matched, found, missing, negative, excluded_by, too_far)


@lru_cache(maxsize=1024)
def _name(term: Term) -> str:
    """A term as written in a query (each term of a query is named once, not per mention)."""
    return render_query(term)


@dataclass(frozen=True, slots=True)
class WatchOverlap:
    """A configured watch's stored mentions of the window, and how many the query matches."""

    watch: str
    stored: int
    also_matched: int


@dataclass(frozen=True, slots=True)
class QueryTest:
    query: str  # the query as Vigie reads it (render_query)
    since: datetime
    in_window: int  # testable mentions published since `since`
    tested: int  # how many of them were tested (the newest, at most the scan limit)
    matched: int
    near_misses: int
    excluded: int  # near misses that only a NOT kept out
    term_counts: tuple[tuple[str, int], ...]  # each term ("NOT x" for negative ones) -> mentions
    watches: tuple[WatchOverlap, ...]
    matched_sample: tuple[Judged, ...]
    near_miss_sample: tuple[Judged, ...]

    def as_dict(self) -> dict[str, Any]:
        def item(j: Judged) -> dict[str, Any]:
            return {
                "published_at": j.text.published_at.isoformat(),
                "source": j.text.source,
                "title": j.text.title,
                "url": j.text.url,
                "topics": list(j.text.topics),
                "found": list(j.found),
                "missing": list(j.missing),
                "excluded_by": list(j.excluded_by),
                "why": j.why() if not j.matched else None,
            }

        return {
            "query": self.query,
            "since": self.since.isoformat(),
            "in_window": self.in_window,
            "tested": self.tested,
            "matched": self.matched,
            "near_misses": self.near_misses,
            "excluded_by_not": self.excluded,
            "terms": dict(self.term_counts),
            "watches": [
                {"watch": w.watch, "stored": w.stored, "also_matched": w.also_matched}
                for w in self.watches
            ],
            "matched_sample": [item(j) for j in self.matched_sample],
            "near_miss_sample": [item(j) for j in self.near_miss_sample],
        }


def _near_miss_rank(j: Judged) -> tuple[int, float]:
    # What a NOT kept out first (the easiest to decide on), then the most terms found.
    share = len(j.found) / max(1, len(j.found) + len(j.missing))
    return (0 if j.excluded_by else 1, -share)


def try_query(
    node: Node,
    texts: Sequence[StoredText],
    *,
    since: datetime,
    in_window: int,
    watches: Iterable[str],
    limit: int,
) -> QueryTest:
    """Judge every text (newest first) and keep `limit` examples of matches and near misses.

    `watches` are the configured watch names, shown even when they have no stored mention.
    """
    terms = query_terms(node)
    judged = [judge(node, terms, text) for text in texts]
    matched = [j for j in judged if j.matched]
    near = sorted((j for j in judged if j.near_miss), key=_near_miss_rank)  # stable: newest first
    counts: Counter[str] = Counter()
    for j in judged:
        counts.update(j.found)
        counts.update(f"NOT {t}" for t in j.negative)
    shown = [render_query(t) for t in terms.positive]
    shown += [f"NOT {render_query(t)}" for t in terms.negative]
    stored: Counter[str] = Counter()
    also: Counter[str] = Counter()
    for j in judged:
        for topic in j.text.topics:
            stored[topic] += 1
            also[topic] += j.matched
    names = list(dict.fromkeys([*watches, *stored]))
    return QueryTest(
        query=render_query(node),
        since=since,
        in_window=in_window,
        tested=len(judged),
        matched=len(matched),
        near_misses=len(near),
        excluded=sum(1 for j in near if j.excluded_by),
        term_counts=tuple((t, counts[t]) for t in shown),
        watches=tuple(WatchOverlap(n, stored[n], also[n]) for n in names),
        matched_sample=tuple(matched[:limit]),
        near_miss_sample=tuple(near[:limit]),
    )


def _row(j: Judged, detail: str) -> str:
    return (
        f"  {j.text.published_at:%Y-%m-%d %H:%M}  "
        f"{header_safe(j.text.source, MAX_SOURCE_CHARS):<{MAX_SOURCE_CHARS}}  "
        f"{header_safe(j.text.title or '(no title)', MAX_TITLE_CHARS)}  [{detail}]"
    )


def render_query_test(result: QueryTest) -> list[str]:
    """The result as lines for a terminal; stored text is one line, cleaned and bounded."""
    share = f" ({result.matched / result.tested:.0%})" if result.tested else ""
    lines = [f"Query: {result.query}"]
    scanned = (
        f"the newest {result.tested} of {result.in_window}"
        if result.tested < result.in_window
        else f"{result.tested}"
    )
    lines.append(
        f"Stored mentions published since {result.since:%Y-%m-%d %H:%M} UTC: {scanned} tested"
    )
    lines.append(f"Matched: {result.matched} of {result.tested}{share}")
    lines.append("Mentions holding each term:")
    width = max((len(t) for t, _ in result.term_counts), default=0)
    lines.extend(f"  {header_safe(t, 60):<{min(width, 60)}}  {n}" for t, n in result.term_counts)
    if result.watches:
        lines.append("Configured watches (their stored mentions, and how many this query matches):")
        for w in result.watches:
            lines.append(
                f"  {header_safe(w.watch, 40)}: {w.also_matched} of {w.stored}"
                + (f" ({w.stored - w.also_matched} missed)" if w.also_matched < w.stored else "")
            )
    lines.append(f"Matched, newest first ({len(result.matched_sample)} of {result.matched}):")
    lines.extend(_row(j, ", ".join(j.found) or "matched") for j in result.matched_sample)
    lines.append(
        f"Near misses: not matched, holding some terms or excluded by a NOT "
        f"({len(result.near_miss_sample)} of {result.near_misses}):"
    )
    lines.extend(_row(j, j.why()) for j in result.near_miss_sample)
    if not result.near_misses:
        lines.append("  (none)")
    return lines
