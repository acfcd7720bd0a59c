"""The watch-query language: words, "quoted phrases", prefix*, AND, OR, NOT, NEAR/n, parentheses.

Matching is case- and accent-insensitive and works on whole words: `boreale` matches
"Boréale" but not "boréales"; a trailing `*` matches a prefix (`rappel*` matches "rappels").
`a NEAR/5 b` matches when a word of `a` and a word of `b` are at most 5 words apart, in either
order (`NEAR/1`: side by side). Adjacent terms are joined by AND. Precedence, tightest first:
NEAR, NOT, AND, OR; parentheses group.

    ("laiterie boréale" OR boreale) NOT recrutement
    rappel* NEAR/5 (lait OR fromage)

NEAR takes words, prefixes, phrases, or parenthesised OR groups of them: "near" has no clear
meaning for `NOT x` or `x AND y`, so those are refused with an error rather than guessed.

A query is parsed once (`parse_query`) into a small tree and evaluated against the word list of a
text (`text_words`), so matching a thousand mentions does not re-parse anything. `render_query`
writes a tree back as a query (`parse_query(render_query(node)) == node`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from itertools import filterfalse

from vigie.errors import QueryError

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NEAR = re.compile(r"NEAR/([0-9]+)", re.ASCII)
_OPERATORS = {"AND", "OR", "NOT"}
NEAR_MAX = 50
# A watch query is written by a person: these bounds are far above real queries, and checked
# before anything is derived from one (the search string, the term index), whose costs grow
# with its size.
MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 300
# Parentheses and NOTs nest the parser's recursion; real queries never come close.
MAX_DEPTH = 32

# Open ligatures and the soft hyphen, as they are after casefold ("Œ" is already "œ").
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "\u00ad": ""})
# Accented Latin letters decompose to ASCII and marks of this block. U+034F is not a mark and
# U+0345 casefolds to a letter (iota): text with either takes the general path.
_LATIN_MARKS = "".join(
    ch for ch in map(chr, range(0x300, 0x370)) if unicodedata.combining(ch) and ch != "\u0345"
)
_NOT_ASCII_NOR_LATIN_MARK = re.compile(f"[^\\x00-\\x7f{re.escape(_LATIN_MARKS)}]")
# Up to this many distinct marks or separators, str.replace removes them sooner than a regex;
# beyond it one regex pass bounds the cost.
_FEW = 8
# Punctuation that folding leaves as it is and that is common in French text: text_words turns it
# into spaces first (it separates words either way) so that the text takes the quick paths.
_TYPOGRAPHIC = "«»‹›‘’‚“”„–—•·"
# ASCII punctuation, spaces and controls become spaces, so split() cuts ASCII text into the words
# [^\W_]+ finds, several times sooner; bytes.translate is about six times quicker than str's.
_ASCII_SEPARATORS = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_ASCII = frozenset(map(chr, range(128)))


def fold(text: str) -> str:
    """Lower-case `text`, remove its accents and open ligatures ("Cœur Boréale" -> "coeur
    boreale")."""
    if text.isascii():
        return text.lower()  # nothing to decompose: the same answer, much sooner
    # The quick paths give the general answer (checked on every code point by the tests):
    # folding works character by character, marks apart, and those are all removed.
    latin1 = text.encode("latin-1", "ignore")
    if len(latin1) == len(text) and not latin1.translate(None, _LATIN1_SIMPLE):
        # French text: a byte table folds each Latin-1 letter ("É" -> "e").
        return latin1.translate(_LATIN1_FOLD, _LATIN1_DROPPED).decode("ascii")
    decomposed = unicodedata.normalize("NFKD", text)
    if _NOT_ASCII_NOR_LATIN_MARK.search(decomposed) is None:
        # Other accented Latin letters: drop the marks, lower-case what is left.
        return decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _fold_general(text)


def _fold_general(text: str) -> str:
    # str.translate costs about 20 ns a character with this table: three replaces are quicker.
    folded = text.casefold()
    for code, opened in _LIGATURES.items():
        folded = folded.replace(chr(code), opened)
    decomposed = unicodedata.normalize("NFKD", folded)
    again = decomposed.casefold()
    if again != decomposed:
        # Compatibility forms can decompose to capitals ("ℌ" -> "H"): fold those too, so that
        # folding twice changes nothing and a query word always finds itself in a text.
        decomposed = unicodedata.normalize("NFKD", again)
    if decomposed.isascii():
        return decomposed  # no combining marks to remove
    # Each distinct mark is looked up once (filter runs in C), then removed whole.
    marks = [*filter(unicodedata.combining, set(decomposed))]
    if len(marks) > _FEW:
        return _marks_pattern(frozenset(marks)).sub("", decomposed)
    for mark in marks:
        decomposed = decomposed.replace(mark, "")
    return decomposed


def _latin1_folding() -> tuple[bytes, bytes, bytes]:
    """The fold of each Latin-1 character that folds to one ASCII character or to nothing, as a
    bytes.translate table and deletions, and all those characters."""
    table, dropped, simple = bytearray(range(256)), bytearray(), bytearray()
    for code in range(256):
        folded = _fold_general(chr(code))
        if len(folded) == 1 and folded.isascii():
            table[code] = ord(folded)
        elif not folded:
            dropped.append(code)
        else:
            continue  # "ß", "æ", "½", "µ"...: the general path
        simple.append(code)
    return bytes(table), bytes(dropped), bytes(simple)


@lru_cache(maxsize=512)
def _marks_pattern(marks: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(marks)) + "]")


_LATIN1_FOLD, _LATIN1_DROPPED, _LATIN1_SIMPLE = _latin1_folding()


def text_words(text: str) -> tuple[str, ...]:
    """The folded words of `text`, in order; apostrophes and punctuation separate words."""
    if not text.isascii():
        for punctuation in _TYPOGRAPHIC:
            text = text.replace(punctuation, " ")
    folded = fold(text)
    if not folded.isascii():
        # Other punctuation and emoji: turn the few distinct ones into spaces; letters of other
        # scripts (Greek, Cyrillic...) need the regex.
        others = set(folded).difference(_ASCII)
        separators = [*filterfalse(str.isalnum, others)]
        if len(separators) < len(others) or len(separators) > _FEW:
            return tuple(_WORD.findall(folded))
        for separator in separators:
            folded = folded.replace(separator, " ")
    # [^\W_]+ on ASCII text is exactly [A-Za-z0-9]+, i.e. what is left between separators.
    return tuple(folded.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split())


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a prefix (`rappel*`) or a phrase (several words in a row)."""

    words: tuple[str, ...]
    prefix: bool = False

    def matches(self, words: tuple[str, ...]) -> bool:
        if not self.prefix and len(self.words) == 1:
            return self.words[0] in words  # the common case, at C speed
        return bool(self.starts(words, first_only=True))

    def starts(self, words: tuple[str, ...], *, first_only: bool = False) -> list[int]:
        """Where the term begins in `words`, in increasing order (the first one only if asked)."""
        n = len(self.words)
        found: list[int] = []
        if self.prefix:
            head, last = self.words[:-1], self.words[-1]
            for i in range(n - 1, len(words)):
                if words[i].startswith(last) and words[i - n + 1 : i] == head:
                    found.append(i - n + 1)
                    if first_only:
                        break
            return found
        first = self.words[0]
        i = -1
        while True:
            try:
                i = words.index(first, i + 1)
            except ValueError:
                return found
            if words[i : i + n] == self.words:
                found.append(i)
                if first_only:
                    return found


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


@dataclass(frozen=True, slots=True)
class Near:
    """`left` and `right` at most `distance` words apart, in either order, without overlapping.

    Each side is a `Term` or an `Or` whose operands are Terms (or such Ors). The distance is
    counted from the last word of the first to the first word of the second: 1 is side by side.
    """

    left: Term | Or
    right: Term | Or
    distance: int

    def matches(self, words: tuple[str, ...]) -> bool:
        left = _spans(self.left, words)
        if not left:
            return False
        right = _spans(self.right, words)
        if not right:
            return False
        return _follows(left, right, self.distance) or _follows(right, left, self.distance)


Node = Term | Not | And | Or | Near


def _terms(operand: Node) -> list[Term]:
    """The terms of a NEAR operand (a Term, or Ors of Terms)."""
    if isinstance(operand, Term):
        return [operand]
    if isinstance(operand, Or):
        return [term for op in operand.operands for term in _terms(op)]
    raise TypeError(f"a NEAR operand must be a Term or an Or of Terms, not {operand!r}")


def _spans(operand: Term | Or, words: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each place the operand matches, sorted; end is exclusive."""
    spans = [(s, s + len(t.words)) for t in _terms(operand) for s in t.starts(words)]
    spans.sort()
    return spans


def _follows(first: list[tuple[int, int]], then: list[tuple[int, int]], distance: int) -> bool:
    """Whether a span of `then` starts 1..distance words after the last word of one of `first`."""
    starts = [start for start, _ in then]
    for _, end in first:
        k = bisect_left(starts, end)
        if k < len(starts) and starts[k] <= end - 1 + distance:
            return True
    return False


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "phrase", "word", "op" (AND OR NOT) or "near"
    value: str
    pos: int  # 0-based index of its first character in the query
    distance: int = 0  # for "near"


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.pos = 0
        self.depth = 0
        self.not_at: dict[int, int] = {}  # id(Not node) -> position of its NOT

    def error(self, at: int, reason: str) -> QueryError:
        return QueryError(reason, query=self.query, position=at + 1)

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def previous(self) -> _Token | None:
        return self.tokens[self.pos - 1] if self.pos > 0 else None

    def nest(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(at, f"more than {MAX_DEPTH} nested parentheses or NOTs")

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while (token := self.peek()) is not None and _is(token, "OR"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while (token := self.peek()) is not None and token.kind != ")" and not _is(token, "OR"):
            if _is(token, "AND"):
                self.take()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Node:
        token = self.peek()
        if token is not None and _is(token, "NOT"):
            self.take()
            self.nest(token.pos)
            node = Not(self.parse_not())
            self.depth -= 1
            self.not_at[id(node)] = token.pos
            return node
        return self.parse_near()

    def parse_near(self) -> Node:
        start = self.peek()
        left = self.parse_atom()
        near = self.peek()
        if near is None or near.kind != "near":
            return left
        self.take()
        left_operand = self.near_operand(left, start, near)
        right_start = self.peek()
        if right_start is not None and _is(right_start, "NOT"):
            raise self.error(
                right_start.pos,
                f"NOT cannot follow {near.value}: put it outside, NOT (a {near.value} b)",
            )
        right = self.near_operand(self.parse_atom(), right_start, near)
        after = self.peek()
        if after is not None and after.kind == "near":
            raise self.error(
                after.pos,
                f"{after.value} cannot follow another NEAR; join pairs with AND: "
                f"a {near.value} b AND b {after.value} c",
            )
        return Near(left_operand, right, near.distance)

    def near_operand(self, node: Node, start: _Token | None, near: _Token) -> Term | Or:
        if isinstance(node, Term | Or) and all(
            isinstance(op, Term | Or) for op in _flatten_or(node)
        ):
            return node
        at = start.pos if start is not None else near.pos
        raise self.error(
            at,
            f"{near.value} takes words, prefixes, phrases or (x OR y) groups of them; "
            "AND, NOT and NEAR cannot go inside its operands",
        )

    def parse_atom(self) -> Node:
        token = self.peek()
        before = self.previous()
        if token is None:
            # The query is not empty, so something came before.
            assert before is not None
            what = "an opening parenthesis" if before.kind == "(" else before.value
            raise self.error(before.pos, f"{what} is not followed by a term")
        if token.kind in ("word", "phrase"):
            self.take()
            return self.term(token)
        if token.kind == "(":
            self.take()
            self.nest(token.pos)
            node = self.parse_or()
            self.depth -= 1
            closing = self.peek()
            if closing is None:
                raise self.error(
                    len(self.query.rstrip()),
                    f"expected a closing parenthesis for the one at position {token.pos + 1}",
                )
            self.take()
            return node
        # An operator or a closing parenthesis where a term was expected.
        if token.kind == ")":
            if before is None:
                raise self.error(token.pos, "a closing parenthesis has no opening one")
            if before.kind == "(":
                raise self.error(before.pos, "empty parentheses")
            raise self.error(before.pos, f"{before.value} is not followed by a term")
        if before is None or before.kind == "(":
            raise self.error(token.pos, f"{token.value} needs a term before it")
        raise self.error(token.pos, f"a term was expected between {before.value} and {token.value}")

    def term(self, token: _Token) -> Term:
        if token.kind == "phrase":
            if not token.value.strip():
                raise self.error(token.pos, "empty phrase")
            words = text_words(token.value)
            if not words:
                raise self.error(token.pos, "the phrase contains no letters or digits")
            return Term(words)
        value = token.value
        star = value.find("*")
        if value == "*":
            raise self.error(token.pos, "a lone * matches nothing; end a word with it: rappel*")
        if star != -1 and star != len(value) - 1:
            raise self.error(token.pos + star, "* may only end a word, as in rappel*")
        prefix = star != -1
        words = text_words(value[:-1] if prefix else value)
        if not words:
            raise self.error(token.pos, f"{value!r} contains no letters or digits")
        return Term(words, prefix=prefix)


def _is(token: _Token, operator: str) -> bool:
    return token.kind == "op" and token.value == operator


def _flatten_or(node: Term | Or) -> list[Node]:
    if isinstance(node, Term):
        return [node]
    out: list[Node] = []
    for op in node.operands:
        out.extend(_flatten_or(op) if isinstance(op, Or) else [op])
    return out


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = _skip_space(query, 0)
    while pos < len(query):
        ch = query[pos]
        if ch in "()":
            tokens.append(_Token(ch, ch, pos))
            pos += 1
        elif ch == '"':
            end = query.find('"', pos + 1)
            if end == -1:
                raise QueryError("this quote is not closed", query=query, position=pos + 1)
            tokens.append(_Token("phrase", query[pos + 1 : end], pos))
            pos = end + 1
        else:
            end = pos + 1
            while end < len(query) and not query[end].isspace() and query[end] not in '()"':
                end += 1
            tokens.append(_bare_token(query, query[pos:end], pos))
            pos = end
        pos = _skip_space(query, pos)
    return tokens


def _skip_space(query: str, pos: int) -> int:
    while pos < len(query) and query[pos].isspace():
        pos += 1
    return pos


def _bare_token(query: str, word: str, pos: int) -> _Token:
    if word in _OPERATORS:
        return _Token("op", word, pos)
    if word != "NEAR" and not word.startswith("NEAR/"):
        return _Token("word", word, pos)
    match = _NEAR.fullmatch(word)
    if match is None:
        raise QueryError(
            f"{word}: NEAR needs a distance in words, from 1 to {NEAR_MAX}, as in NEAR/5",
            query=query,
            position=pos + 1,
        )
    digits = match.group(1)
    distance = int(digits) if len(digits) <= 3 else NEAR_MAX + 1
    if not 1 <= distance <= NEAR_MAX:
        raise QueryError(
            f"{word}: the distance must be from 1 to {NEAR_MAX} words",
            query=query,
            position=pos + 6,
        )
    return _Token("near", word, pos, distance)


def parse_query(query: str) -> Node:
    """Parse a watch query.

    Raises:
        QueryError: the query is empty, malformed (the message gives the position), or longer
            than MAX_QUERY_CHARS or MAX_QUERY_TERMS.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query has {len(query)} characters, more than {MAX_QUERY_CHARS}: split it "
            "into several watches"
        )
    parser = _Parser(query)
    if not parser.tokens:
        raise QueryError("the query is empty")
    terms = sum(1 for token in parser.tokens if token.kind in {"word", "phrase"})
    if terms > MAX_QUERY_TERMS:
        raise QueryError(
            f"the query has {terms} terms, more than {MAX_QUERY_TERMS}: split it into several "
            "watches"
        )
    node = parser.parse_or()
    token = parser.peek()
    if token is not None:
        # parse_or stops only at the end or at a ")" that no "(" opened.
        raise parser.error(token.pos, "a closing parenthesis has no opening one")
    negative = _negative_at(node, parser.not_at)
    if negative is not None:
        raise parser.error(negative, "a query made only of NOT terms would match almost everything")
    return node


def _negative_at(node: Node, not_at: dict[int, int]) -> int | None:
    """Where the NOT is that would make the whole query (or an OR branch) purely negative."""
    if isinstance(node, Not):
        return not_at.get(id(node), 0)
    if isinstance(node, And):
        found = [_negative_at(op, not_at) for op in node.operands]
        return found[0] if all(at is not None for at in found) else None
    if isinstance(node, Or):
        return next(
            (at for op in node.operands if (at := _negative_at(op, not_at)) is not None), None
        )
    return None


# --- rendering -------------------------------------------------------------------------------


def render_query(node: Node) -> str:
    """A query that parses back to `node` (a tree made by `parse_query`), with few parentheses.

    Useful to show a normalised query, or as a model to translate the tree for a search API.
    """
    if isinstance(node, Term):
        if len(node.words) == 1:
            return node.words[0] + ("*" if node.prefix else "")
        if node.prefix:
            return "-".join(node.words) + "*"  # a phrase cannot end with a prefix
        return '"' + " ".join(node.words) + '"'
    if isinstance(node, Not):
        return "NOT " + _wrapped(node.operand, (And, Or))
    if isinstance(node, And):
        return " AND ".join(_wrapped(op, (And, Or)) for op in node.operands)
    if isinstance(node, Or):
        return " OR ".join(_wrapped(op, (Or,)) for op in node.operands)
    left, right = _wrapped(node.left, (Or,)), _wrapped(node.right, (Or,))
    return f"{left} NEAR/{node.distance} {right}"


def _wrapped(node: Node, grouped: tuple[type, ...]) -> str:
    """`node` rendered, in parentheses when the parser would otherwise merge or regroup it."""
    text = render_query(node)
    return f"({text})" if isinstance(node, grouped) else text
