"""The watch-query language: words, "quoted phrases", AND, OR, NOT and parentheses.

Matching is case- and accent-insensitive and works on whole words: `boreale` matches
"Boréale" but not "boréales"; a trailing `*` matches a prefix (`rappel*` matches "rappels").
Adjacent terms are joined by AND; precedence is NOT, then AND, then OR.

    ("laiterie boréale" OR boreale) NOT recrutement

A query is parsed once (`parse_query`) into a small tree and evaluated against the word list of a
text (`text_words`), so matching a thousand mentions does not re-parse anything.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from vigie.errors import QueryError

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_TOKEN = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"|([^\s()"]+))')
_OPERATORS = {"AND", "OR", "NOT"}


_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "\u00ad": ""})
_LIGATURE_PAIRS = (("œ", "oe"), ("æ", "ae"), ("\u00ad", ""))


def fold(text: str) -> str:
    """Lower-case `text`, remove its accents and open ligatures ("Cœur Boréale" -> "coeur
    boreale")."""
    if text.isascii():
        return text.lower()  # nothing to decompose: the same answer, much sooner
    folded = text.casefold()
    for ligature, replacement in _LIGATURE_PAIRS:
        if ligature in folded:
            folded = folded.replace(ligature, replacement)
    decomposed = unicodedata.normalize("NFKD", folded)
    if decomposed.isascii():
        return decomposed
    # Each distinct character is looked up once, and the marks found are removed by a regex
    # (str.translate with a dict costs about a microsecond per character).
    marks = frozenset(ch for ch in set(decomposed) if unicodedata.combining(ch))
    return _marks_pattern(marks).sub("", decomposed) if marks else decomposed


@lru_cache(maxsize=512)
def _marks_pattern(marks: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(marks)) + "]")


def text_words(text: str) -> tuple[str, ...]:
    """The folded words of `text`, in order; apostrophes and punctuation separate words."""
    folded = fold(text)
    # On ASCII text, [^\W_] is exactly [A-Za-z0-9], which the regex engine matches sooner.
    return tuple((_ASCII_WORD if folded.isascii() else _WORD).findall(folded))


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a prefix (`rappel*`) or a phrase (several words in a row)."""

    words: tuple[str, ...]
    prefix: bool = False

    def matches(self, words: tuple[str, ...]) -> bool:
        n = len(self.words)
        if n and not self.prefix:
            # Exact words: let tuple.index find where the first word occurs (C speed).
            first = self.words[0]
            if n == 1:
                return first in words
            start, stop = 0, len(words) - n + 1
            while start < stop:
                try:
                    found = words.index(first, start, stop)
                except ValueError:
                    return False
                if words[found : found + n] == self.words:
                    return True
                start = found + 1
            return False
        last = n - 1
        for start in range(len(words) - n + 1):
            for offset, wanted in enumerate(self.words):
                got = words[start + offset]
                if offset == last and self.prefix:
                    if not got.startswith(wanted):
                        break
                elif got != wanted:
                    break
            else:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def matches(self, words: tuple[str, ...]) -> bool:
        return not self.operand.matches(words)


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]

    def matches(self, words: tuple[str, ...]) -> bool:
        return all(op.matches(words) for op in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]

    def matches(self, words: tuple[str, ...]) -> bool:
        return any(op.matches(words) for op in self.operands)


Node = Term | Not | And | Or


def _tokenize(query: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    stripped = query.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None:
            # Only an unterminated quote can fail to match.
            quote = stripped.index('"', pos)
            raise QueryError(f"unterminated quote at character {quote + 1}")
        pos = m.end()
        if m.group(1):
            tokens.append(("(", "("))
        elif m.group(2):
            tokens.append((")", ")"))
        elif m.group(3) is not None:
            tokens.append(("phrase", m.group(3)))
        else:
            word = m.group(4)
            tokens.append(("op", word) if word in _OPERATORS else ("word", word))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.peek() == ("op", "OR"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while (token := self.peek()) is not None and token != ("op", "OR") and token[0] != ")":
            if token == ("op", "AND"):
                self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Node:
        if self.peek() == ("op", "NOT"):
            self.take()
            return Not(self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise QueryError("the query ends where a term was expected")
        kind, value = self.take()
        if kind == "(":
            node = self.parse_or()
            if self.peek() != (")", ")"):
                raise QueryError("a parenthesis is not closed")
            self.take()
            return node
        if kind == ")":
            raise QueryError("a closing parenthesis has no opening one")
        if kind == "op":
            raise QueryError(f"{value} is not followed by a term")
        return _term(value, phrase=kind == "phrase")


def _term(value: str, *, phrase: bool) -> Term:
    prefix = not phrase and value.endswith("*")
    words = text_words(value.rstrip("*") if prefix else value)
    if not words:
        raise QueryError(f"{value!r} contains no letters or digits")
    return Term(words, prefix=prefix)


def parse_query(query: str) -> Node:
    """Parse a watch query.

    Raises:
        QueryError: the query is empty or malformed; the message says where.
    """
    tokens = _tokenize(query)
    if not tokens:
        raise QueryError("the query is empty")
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.peek() is not None:
        raise QueryError("a closing parenthesis has no opening one")
    if _only_negative(node):
        raise QueryError("a query made only of NOT terms would match almost everything")
    return node


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(op) for op in node.operands)
    if isinstance(node, Or):
        return any(_only_negative(op) for op in node.operands)
    return False
