"""The search string given to search APIs, derived from the watch queries.

A search API cannot run a watch query as it is (NOT, prefixes and nesting mean different things
to each engine), and does not need to: Vigie matches every mention locally afterwards. So the
derived search string only has to find a superset of what the watch queries match: the positive
terms and phrases of every watch query, OR-ed (`"laiterie boréale" OR boreale`). Terms under a
NOT are left out; a prefix (`rappel*`) is searched as its stem. Words keep the spelling they have
in the watch query (accents included) even though the query tree holds them folded.

Only the node classes of `vigie.query` are read here; a node class this module does not know
(a future operator) is walked through its fields, so its terms still count as positive.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator

from vigie.errors import QueryError
from vigie.query import Node, Not, Term, parse_query, text_words

MAX_TERMS = 10
MAX_CHARS = 400
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_OR_TOKEN = re.compile(r'"[^"]*"?|\(|\)|[^\s()"]+')


def _positive_terms(node: object) -> Iterator[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, Not):
        return
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            children = value if isinstance(value, tuple) else (value,)
            for child in children:
                yield from _positive_terms(child)


def _spellings(query: str) -> dict[str, str]:
    """Folded word -> the word as the query writes it (first spelling wins)."""
    found: dict[str, str] = {}
    for word in _WORD.findall(query):
        folded = text_words(word)
        if len(folded) == 1:
            found.setdefault(folded[0], word.lower())
    return found


def _render(term: Term, spellings: dict[str, str]) -> str:
    words = " ".join(spellings.get(w, w) for w in term.words)
    return f'"{words}"' if len(term.words) > 1 else words


def _keyed_terms(query: str) -> list[tuple[tuple[str, ...], str]]:
    node: Node = parse_query(query)
    spellings = _spellings(query)
    found: dict[tuple[str, ...], str] = {}
    for term in _positive_terms(node):
        if term.words not in found:
            found[term.words] = _render(term, spellings)
    return list(found.items())


def positive_terms(query: str) -> list[str]:
    """The positive terms of one watch query, rendered for a search engine, in query order.

    Raises:
        QueryError: the query does not parse.
    """
    return [text for _, text in _keyed_terms(query)]


def derived_search_query(
    queries: Iterable[str], *, max_terms: int = MAX_TERMS, max_chars: int = MAX_CHARS
) -> str:
    """The positive terms of every parsable watch query, OR-ed, bounded in terms and length;
    a term already there under another spelling (accents, case) is not repeated.

    Queries that do not parse are skipped (their own validation reports them).
    """
    seen: set[tuple[str, ...]] = set()
    terms: list[str] = []
    length = 0
    for query in queries:
        try:
            found = _keyed_terms(query)
        except QueryError:
            continue
        for words, term in found:
            if words in seen:
                continue
            extra = len(term) + (4 if terms else 0)
            if len(terms) >= max_terms or length + extra > max_chars:
                return " OR ".join(terms)
            seen.add(words)
            terms.append(term)
            length += extra
    return " OR ".join(terms)


def split_or(query: str) -> list[str]:
    """The top-level OR alternatives of a search string (for engines that do not read OR:
    each alternative is searched on its own). Quotes and parentheses are respected."""
    parts: list[list[str]] = [[]]
    depth = 0
    for token in _OR_TOKEN.findall(query):
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(0, depth - 1)
        if token == "OR" and depth == 0:
            parts.append([])
            continue
        parts[-1].append(token)
    alternatives: list[str] = []
    for part in parts:
        if len(part) > 2 and part[0] == "(" and part[-1] == ")" and _balanced(part[1:-1]):
            found = split_or(" ".join(part[1:-1]))  # a parenthesised group of alternatives
        else:
            text = " ".join(part).replace("( ", "(").replace(" )", ")").strip()
            found = [text] if text else []
        alternatives.extend(a for a in found if a not in alternatives)
    return alternatives


def _balanced(tokens: list[str]) -> bool:
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth < 0:
            return False
    return depth == 0
