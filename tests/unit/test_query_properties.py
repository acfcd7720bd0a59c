"""Property tests of the watch-query language (`vigie.query`), with hypothesis.

Queries and texts are drawn from a small vocabulary so that they often match; each property is
checked against the definition (OR, AND, NOT, NEAR as plain Python over the word list) or against
another spelling of the same thing (accents, case, the rendered tree).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.errors import QueryError
from vigie.query import Near, Node, Or, Term, fold, parse_query, render_query, text_words

PROPERTIES = settings(max_examples=200, deadline=None)

WORDS = ("lait", "laiterie", "boreale", "rappel", "rappels", "montreal", "greve", "cafe", "a")
PREFIXES = ("lait", "rap", "bor", "mont", "ca")
# What changes a spelling without changing its folded form: accents (composed or not) and case.
ACCENTS = ("\u0301", "\u0300", "\u0302", "\u0308", "\u0327")
SEPARATORS = (" ", ", ", " : ", "\n", " « ", " » ", "' ", "-")

Spell = Callable[[str], str]


def plain(word: str) -> str:
    return word


@st.composite
def spellings(draw: st.DrawFn) -> Spell:
    """A function that respells words with random accents and case, the same way each time."""
    seed = draw(st.integers(0, 2**32 - 1))

    def spell(word: str) -> str:
        out = []
        for i, ch in enumerate(word):
            bits = (seed >> (2 * (i % 16))) & 3
            accent = ACCENTS[(seed >> i) % len(ACCENTS)] if bits & 2 else ""
            out.append((ch.upper() if bits & 1 else ch) + accent)
        return unicodedata.normalize("NFC" if seed & 1 else "NFD", "".join(out))

    return spell


# --- queries as structures, rendered with any spelling ----------------------------------------

Shape = tuple[object, ...]


def leaves() -> st.SearchStrategy[Shape]:
    return st.one_of(
        st.tuples(st.just("word"), st.sampled_from(WORDS)),
        st.tuples(st.just("prefix"), st.sampled_from(PREFIXES)),
        st.tuples(st.just("phrase"), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
    )


def near_operands() -> st.SearchStrategy[Shape]:
    return st.one_of(leaves(), st.tuples(st.just("or"), st.lists(leaves(), min_size=2, max_size=3)))


def nears() -> st.SearchStrategy[Shape]:
    return st.tuples(st.just("near"), near_operands(), near_operands(), st.integers(1, 8))


def shapes() -> st.SearchStrategy[Shape]:
    return st.recursive(
        st.one_of(leaves(), nears()),
        lambda inner: st.one_of(
            st.tuples(st.just("and"), st.lists(inner, min_size=2, max_size=3)),
            st.tuples(st.just("or"), st.lists(inner, min_size=2, max_size=3)),
            # NOT always beside a positive operand: a query made only of NOT terms is refused.
            st.tuples(st.just("and-not"), inner, inner),
        ),
        max_leaves=6,
    )


def write(shape: Shape, spell: Spell = plain) -> str:
    """The query text of a shape; every compound operand is parenthesised."""
    kind = shape[0]
    if kind == "word":
        return spell(str(shape[1]))
    if kind == "prefix":
        return spell(str(shape[1])) + "*"
    if kind == "phrase":
        words = shape[1]
        assert isinstance(words, list)
        return '"' + " ".join(spell(w) for w in words) + '"'
    if kind == "and-not":
        return f"{group(shape[1], spell)} NOT {group(shape[2], spell)}"
    if kind == "near":
        return f"{group(shape[1], spell)} NEAR/{shape[3]} {group(shape[2], spell)}"
    operands = shape[1]
    assert isinstance(operands, list)
    joiner = " OR " if kind == "or" else " AND "
    return joiner.join(group(op, spell) for op in operands)


def group(shape: object, spell: Spell) -> str:
    assert isinstance(shape, tuple)
    text = write(shape, spell)
    return text if shape[0] in ("word", "prefix", "phrase") else f"({text})"


def parsed(shape: Shape, spell: Spell = plain) -> Node:
    return parse_query(write(shape, spell))


# --- texts ----------------------------------------------------------------------------------

FILLERS = ("de", "la", "le", "du", "et", "rappelle", "laitage", "boreales", "cafes")


@st.composite
def texts(draw: st.DrawFn, spell: Spell = plain) -> str:
    words = draw(st.lists(st.sampled_from(WORDS + FILLERS), max_size=25))
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(words), max_size=len(words)))
    return "".join(spell(w) + sep for w, sep in zip(words, seps, strict=True))


def matches(query: str | Node, text: str) -> bool:
    node = parse_query(query) if isinstance(query, str) else query
    return node.matches(text_words(text))


# --- folding --------------------------------------------------------------------------------


@PROPERTIES
@given(st.text())
def test_folding_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert text_words(" ".join(text_words(text))) == text_words(text)


@PROPERTIES
@given(st.text(alphabet=st.characters(codec="latin-1")))
def test_words_do_not_depend_on_case_or_composition(text: str) -> None:
    assert text_words(text.upper()) == text_words(text.lower()) == text_words(text)
    assert text_words(unicodedata.normalize("NFD", text)) == text_words(text)


@PROPERTIES
@given(shapes(), texts(), spellings(), spellings())
def test_a_query_matches_a_text_whatever_their_accents_and_case(
    shape: Shape, text: str, spell_query: Spell, spell_text: Spell
) -> None:
    node = parsed(shape)
    assert parsed(shape, spell_query) == node
    respelled = "".join(spell_text(w) if w.isalpha() else w for w in _chunks(text))
    assert matches(node, respelled) == matches(node, text)


def _chunks(text: str) -> list[str]:
    """`text` cut into runs of letters and runs of the rest."""
    out: list[str] = []
    for ch in text:
        if out and out[-1][-1].isalpha() == ch.isalpha():
            out[-1] += ch
        else:
            out.append(ch)
    return out


# --- structure ------------------------------------------------------------------------------


@PROPERTIES
@given(shapes())
def test_a_rendered_tree_parses_back_to_itself(shape: Shape) -> None:
    node = parsed(shape)
    assert parse_query(render_query(node)) == node


@PROPERTIES
@given(shapes(), shapes(), texts())
def test_or_and_and_not_follow_their_definitions(left: Shape, right: Shape, text: str) -> None:
    """`a OR b` iff a or b; `a AND b` iff both; `a NOT b` iff a and not b."""
    a, b = matches(parsed(left), text), matches(parsed(right), text)
    one, other = group(left, plain), group(right, plain)
    assert matches(f"{one} OR {other}", text) == (a or b)
    assert matches(f"{one} AND {other}", text) == (a and b)
    assert matches(f"{one} {other}", text) == (a and b)
    assert matches(f"{one} NOT {other}", text) == (a and not b)


# --- terms and NEAR against their definitions -------------------------------------------------


def term_spans(term: Term, words: tuple[str, ...]) -> list[tuple[int, int]]:
    """Every (start, end) where the term matches, by brute force."""
    n = len(term.words)
    found = []
    for start in range(len(words) - n + 1):
        window = words[start : start + n]
        same = window[:-1] == term.words[:-1] and (
            window[-1].startswith(term.words[-1]) if term.prefix else window[-1] == term.words[-1]
        )
        if same:
            found.append((start, start + n))
    return found


def operand_spans(operand: Term | Or, words: tuple[str, ...]) -> list[tuple[int, int]]:
    if isinstance(operand, Term):
        return term_spans(operand, words)
    return [s for op in operand.operands for s in operand_spans(_near_operand(op), words)]


def _near_operand(node: Node) -> Term | Or:
    assert isinstance(node, Term | Or)
    return node


def near_by_definition(node: Near, words: tuple[str, ...]) -> bool:
    """Some left and right places that do not overlap, the later starting at most `distance`
    words after the last word of the earlier."""
    for ls, le in operand_spans(node.left, words):
        for rs, re in operand_spans(node.right, words):
            if rs >= le and rs - (le - 1) <= node.distance:
                return True
            if ls >= re and ls - (re - 1) <= node.distance:
                return True
    return False


@PROPERTIES
@given(leaves(), texts())
def test_a_term_matches_where_brute_force_finds_it(leaf: Shape, text: str) -> None:
    term = parsed(leaf)
    assert isinstance(term, Term)
    words = text_words(text)
    spans = term_spans(term, words)
    assert term.matches(words) == bool(spans)
    assert term.starts(words) == [start for start, _ in spans]


@PROPERTIES
@given(nears(), texts())
def test_near_matches_as_defined(shape: Shape, text: str) -> None:
    node = parsed(shape)
    assert isinstance(node, Near)
    words = text_words(text)
    assert node.matches(words) == near_by_definition(node, words)


@PROPERTIES
@given(near_operands(), near_operands(), st.integers(1, 50), texts())
def test_near_implies_and(left: Shape, right: Shape, distance: int, text: str) -> None:
    near = parse_query(f"{group(left, plain)} NEAR/{distance} {group(right, plain)}")
    both = parse_query(f"{group(left, plain)} AND {group(right, plain)}")
    if matches(near, text):
        assert matches(both, text)


@PROPERTIES
@given(near_operands(), near_operands(), st.integers(1, 50), st.integers(1, 50), texts())
def test_near_is_monotone_in_its_distance(
    left: Shape, right: Shape, n: int, m: int, text: str
) -> None:
    close, far = sorted((n, m))
    a, b = group(left, plain), group(right, plain)
    if matches(f"{a} NEAR/{close} {b}", text):
        assert matches(f"{a} NEAR/{far} {b}", text)


# --- the parser on anything -----------------------------------------------------------------

PIECES = (
    "(", ")", '"', " ", "AND", "OR", "NOT", "NEAR", "NEAR/", "NEAR/3", "NEAR/0", "NEAR/99",
    "*", "lait", "rap*", "Boréale", "l'usine", "« »", "\t", "’",
)  # fmt: skip


def _check_error(query: str, err: QueryError) -> None:
    assert "\n" not in str(err)
    if err.position is not None:
        assert 1 <= err.position <= len(query) + 1
        assert err.caret().startswith(str(err))


@PROPERTIES
@given(st.text())
def test_the_parser_raises_only_query_errors_on_any_text(query: str) -> None:
    try:
        parse_query(query)
    except QueryError as err:
        _check_error(query, err)


@PROPERTIES
@given(st.lists(st.sampled_from(PIECES), max_size=14).map(" ".join))
def test_the_parser_raises_only_query_errors_on_query_like_text(query: str) -> None:
    try:
        node = parse_query(query)
    except QueryError as err:
        _check_error(query, err)
    else:
        assert parse_query(render_query(node)) == node


@PROPERTIES
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join))
def test_the_parser_raises_only_query_errors_on_glued_pieces(query: str) -> None:
    try:
        node = parse_query(query)
    except QueryError as err:
        _check_error(query, err)
    else:
        assert parse_query(render_query(node)) == node
