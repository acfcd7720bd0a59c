"""Unit tests of the watch-query language (`vigie.query`): folding, words, parsing, matching."""

from __future__ import annotations

import io

import pytest

from cli.main import main
from vigie.errors import QueryError
from vigie.query import And, Near, Not, Or, Term, fold, parse_query, render_query, text_words


def matches(query: str, text: str) -> bool:
    return parse_query(query).matches(text_words(text))


# --- fold and text_words -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Boréale", id="capitalised-accented"),
        pytest.param("boreale", id="lower-plain"),
        pytest.param("BORÉALE", id="upper-accented"),
        pytest.param("BoReAlE", id="mixed-case-plain"),
    ],
)
def test_fold_removes_case_and_accents(text: str) -> None:
    assert fold(text) == "boreale"


def test_fold_handles_cedilla_and_circumflex() -> None:
    assert fold("Français Fenêtre Noël") == "francais fenetre noel"


def test_text_words_are_folded_and_in_order() -> None:
    assert text_words("La Laiterie BORÉALE rappelle") == ("la", "laiterie", "boreale", "rappelle")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("l'usine", id="straight-apostrophe"),
        pytest.param("l’usine", id="typographic-apostrophe"),
        pytest.param("L'USINE", id="upper-case"),
    ],
)
def test_text_words_split_on_apostrophes(text: str) -> None:
    assert text_words(text) == ("l", "usine")


def test_text_words_drop_punctuation_and_keep_digits() -> None:
    assert text_words("« Rappel » : lot #42, COVID-19 !") == ("rappel", "lot", "42", "covid", "19")


def test_text_words_of_punctuation_only_is_empty() -> None:
    assert text_words(" -- !? … ") == ()


# --- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "text"),
    [
        pytest.param("boreale", "Laiterie Boréale", id="plain-query-accented-text"),
        pytest.param("Boréale", "LAITERIE BOREALE", id="accented-query-upper-text"),
        pytest.param("BORÉALE", "la boréale", id="upper-query-lower-text"),
    ],
)
def test_matching_ignores_case_and_accents(query: str, text: str) -> None:
    assert matches(query, text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Les aurores boréales", id="plural"),
        pytest.param("boréalement vôtre", id="longer-word"),
        pytest.param("subboreale", id="word-suffix"),
    ],
)
def test_a_word_matches_whole_words_only(text: str) -> None:
    assert not matches("boreale", text)


def test_a_phrase_matches_its_words_in_a_row() -> None:
    assert matches('"laiterie boréale"', "Scandale à la Laiterie Boréale ce matin")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("boréale laiterie", id="reversed"),
        pytest.param("laiterie de la boréale", id="words-between"),
    ],
)
def test_a_phrase_does_not_match_scattered_words(text: str) -> None:
    assert not matches('"laiterie boréale"', text)


def test_a_phrase_with_punctuation_between_words_still_matches() -> None:
    assert matches('"laiterie boréale"', "Laiterie, Boréale")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("rappel de lait", True, id="exact-word"),
        pytest.param("trois rappels de lait", True, id="plural"),
        pytest.param("il rappelle", True, id="verb"),
        pytest.param("un appel", False, id="different-word"),
        pytest.param("le pré-rappel", True, id="after-hyphen"),
        pytest.param("unrappel", False, id="prefix-not-at-word-start"),
    ],
)
def test_a_trailing_star_matches_a_word_prefix(text: str, expected: bool) -> None:
    assert matches("rappel*", text) is expected


def test_a_star_inside_quotes_is_not_a_prefix() -> None:
    assert not matches('"rappel*"', "rappels")


def test_a_query_with_an_apostrophe_matches_the_split_words() -> None:
    assert matches("l'usine", "Incendie à L’usine de Chicoutimi")


def test_apostrophe_split_lets_a_word_match_after_an_elision() -> None:
    assert matches("usine", "l'usine ferme")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("laiterie boréale", True, id="both"),
        pytest.param("laiterie seule", False, id="only-first"),
        pytest.param("boréale seule", False, id="only-second"),
    ],
)
def test_adjacent_terms_are_joined_by_and(text: str, expected: bool) -> None:
    assert matches("laiterie boreale", text) is expected


def test_implicit_and_does_not_require_adjacency() -> None:
    assert matches("laiterie boreale", "boréale: la laiterie répond")


def test_explicit_and_is_the_same_as_implicit_and() -> None:
    assert parse_query("laiterie AND boreale") == parse_query("laiterie boreale")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("lait", True, id="left"),
        pytest.param("fromage", True, id="right"),
        pytest.param("beurre", False, id="neither"),
    ],
)
def test_or_matches_either_side(text: str, expected: bool) -> None:
    assert matches("lait OR fromage", text) is expected


def test_lowercase_operators_are_ordinary_words() -> None:
    # Only upper-case AND/OR/NOT are operators: "or" here is a word that must appear.
    assert not matches("lait or fromage", "lait")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("lait", True, id="a-alone"),
        pytest.param("fromage beurre", True, id="b-and-c"),
        pytest.param("fromage", False, id="b-without-c"),
        pytest.param("beurre", False, id="c-without-b"),
    ],
)
def test_and_binds_tighter_than_or(text: str, expected: bool) -> None:
    # lait OR fromage beurre == lait OR (fromage AND beurre)
    assert matches("lait OR fromage beurre", text) is expected


def test_and_binds_tighter_than_or_in_the_tree() -> None:
    a, b, c = Term(("a",)), Term(("b",)), Term(("c",))
    assert parse_query("a OR b AND c") == Or((a, And((b, c))))


def test_not_binds_tighter_than_and_in_the_tree() -> None:
    a, b = Term(("a",)), Term(("b",))
    assert parse_query("NOT a b") == And((Not(a), b))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("laiterie boréale", True, id="wanted-only"),
        pytest.param("la laiterie boréale recrute", False, id="excluded-word-present"),
        pytest.param("recrutement", False, id="excluded-only"),
    ],
)
def test_not_excludes_texts_with_the_term(text: str, expected: bool) -> None:
    assert matches("boreale NOT recrut*", text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        pytest.param("(lait OR fromage) beurre", "fromage beurre", True, id="group-then-and"),
        pytest.param("(lait OR fromage) beurre", "fromage", False, id="group-needs-and"),
        pytest.param("lait OR fromage beurre", "lait", True, id="without-group-lait-alone"),
        pytest.param("(lait OR fromage) beurre", "lait", False, id="with-group-lait-alone"),
        pytest.param("NOT (lait OR fromage) beurre", "beurre", True, id="not-group-absent"),
        pytest.param("NOT (lait OR fromage) beurre", "beurre lait", False, id="not-group-present"),
    ],
)
def test_parentheses_override_precedence(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Rappel à la Laiterie Boréale", True, id="phrase"),
        pytest.param("BOREALE en difficulté", True, id="word"),
        pytest.param("La Laiterie Boréale recrute : recrutement ouvert", False, id="excluded"),
        pytest.param("Les aurores boréales", False, id="plural-is-another-word"),
    ],
)
def test_the_example_query_of_the_documentation(text: str, expected: bool) -> None:
    assert matches('("laiterie boréale" OR boreale) NOT recrutement', text) is expected


def test_a_query_that_mixes_positive_and_negative_or_terms_is_accepted() -> None:
    node = parse_query("(lait NOT bio) OR fromage")
    assert node.matches(text_words("fromage bio"))


# --- NEAR/n ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("rappel lait", True, id="side-by-side"),
        pytest.param("lait rappel", True, id="reversed"),
        pytest.param("rappel du lait", True, id="one-word-between"),
        pytest.param("rappel de tout le lait", True, id="three-words-between-distance-4"),
        pytest.param("rappel de tout ce lait", True, id="distance-4-again"),
        pytest.param("rappel de tout ce bon lait", False, id="distance-5"),
        pytest.param("lait : rappel !", True, id="punctuation-is-not-a-word"),
        pytest.param("rappel seul", False, id="only-left"),
        pytest.param("lait seul", False, id="only-right"),
    ],
)
def test_near_matches_within_n_words_in_either_order(text: str, expected: bool) -> None:
    assert matches("rappel NEAR/4 lait", text) is expected


def test_near_1_means_side_by_side() -> None:
    assert matches("rappel NEAR/1 lait", "lait rappel")
    assert not matches("rappel NEAR/1 lait", "rappel du lait")


def test_near_finds_a_close_pair_among_far_ones() -> None:
    text = "rappel " + "x " * 60 + "lait " + "y " * 20 + "rappel z lait"
    assert matches("rappel NEAR/2 lait", text)
    assert not matches("rappel NEAR/1 lait", text)


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        pytest.param('"laiterie boréale" NEAR/3 rappel', "Laiterie Boréale : rappel", True),
        pytest.param('"laiterie boréale" NEAR/3 rappel', "rappel à la Laiterie Boréale", True),
        # Counted from the end of the phrase: "boréale" -> "rappel" is 4 words.
        pytest.param(
            '"laiterie boréale" NEAR/3 rappel', "Laiterie Boréale, et puis un rappel", False
        ),
        pytest.param('"laiterie boréale" NEAR/3 rappel', "Laiterie et Boréale rappel", False),
        pytest.param("rappel* NEAR/2 lait*", "les rappels de laitages", True, id="prefixes"),
        pytest.param("rappel* NEAR/2 lait*", "le pré-rappel des laits", True, id="after-hyphen"),
        pytest.param("rappel* NEAR/2 lait*", "appel de lait", False, id="prefix-not-found"),
        pytest.param("Montréal NEAR/2 grève", "GREVE à MONTREAL", True, id="folded"),
    ],
)
def test_near_takes_phrases_and_prefixes(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("rappel de fromage", True, id="second-alternative"),
        pytest.param("recall of milk", True, id="english"),
        pytest.param("rappel du beurre", False, id="no-alternative"),
        pytest.param("fromage lait", False, id="right-only"),
    ],
)
def test_near_takes_or_groups(text: str, expected: bool) -> None:
    assert matches("(rappel OR recall) NEAR/2 (lait OR fromage OR milk)", text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        pytest.param("boreale NEAR/3 boreale", "la boréale", False, id="same-word-once"),
        pytest.param("boreale NEAR/3 boreale", "boréale et boréale", True, id="same-word-twice"),
        pytest.param('boreale NEAR/3 "laiterie boreale"', "laiterie boréale", False, id="inside"),
        pytest.param(
            'boreale NEAR/3 "laiterie boreale"', "boréale, laiterie boréale", True, id="beside"
        ),
    ],
)
def test_near_needs_two_different_places_of_the_text(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


def test_near_binds_tighter_than_and_not_and_or() -> None:
    a, b, c, d = (Term((w,)) for w in "abcd")
    assert parse_query("a b NEAR/3 c OR d") == Or((And((a, Near(b, c, 3))), d))
    assert parse_query("a NOT b NEAR/3 c") == And((a, Not(Near(b, c, 3))))
    assert parse_query("(a OR b) NEAR/2 c") == Near(Or((a, b)), c, 2)


def test_a_near_in_a_larger_query() -> None:
    query = '("laiterie boréale" OR boreale) NEAR/5 (rappel* OR recall*) NOT exercice'
    assert matches(query, "La Laiterie Boréale annonce le rappel de fromages")
    assert matches(query, "Recall: Boreale cheese")
    assert not matches(query, "Boréale : exercice de rappel")
    assert not matches(query, "Boréale annonce, après des mois de travaux, un rappel")


def test_lowercase_near_is_an_ordinary_word() -> None:
    assert matches("near lait", "near the lait")


# --- render_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "rendered"),
    [
        pytest.param(
            '("Laiterie Boréale" OR boreale) NOT recrutement',
            '("laiterie boreale" OR boreale) AND NOT recrutement',
            id="doc-example",
        ),
        pytest.param("a OR b c", "a OR b AND c", id="and-in-or"),
        pytest.param("(a OR b) c", "(a OR b) AND c", id="or-in-and"),
        pytest.param("(a OR b) OR c", "(a OR b) OR c", id="nested-or-kept"),
        pytest.param("NOT (a b) c", "NOT (a AND b) AND c", id="not-of-and"),
        pytest.param("rappel* NEAR/5 (lait OR milk)", "rappel* NEAR/5 (lait OR milk)", id="near"),
        pytest.param("x NOT a NEAR/2 b", "x AND NOT a NEAR/2 b", id="not-near"),
        pytest.param("l'usine*", "l-usine*", id="prefix-of-several-words"),
    ],
)
def test_render_query_writes_a_normalised_query(query: str, rendered: str) -> None:
    node = parse_query(query)
    assert render_query(node) == rendered
    assert parse_query(rendered) == node


# --- errors ----------------------------------------------------------------------------------

NEAR_OPERANDS = (
    "takes words, prefixes, phrases or (x OR y) groups of them; "
    "AND, NOT and NEAR cannot go inside its operands"
)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param("", "the query is empty", id="empty"),
        pytest.param("   \t ", "the query is empty", id="blank"),
        # Unbalanced parentheses.
        pytest.param(
            "(lait OR fromage",
            "position 17: expected a closing parenthesis for the one at position 1",
            id="unclosed-parenthesis",
        ),
        pytest.param(
            "((lait)",
            "position 8: expected a closing parenthesis for the one at position 1",
            id="unclosed-nested-parenthesis",
        ),
        pytest.param(
            "lait (fromage   ",
            "position 14: expected a closing parenthesis for the one at position 6",
            id="unclosed-parenthesis-trailing-spaces",
        ),
        pytest.param(
            "lait)", "position 5: a closing parenthesis has no opening one", id="stray-closing"
        ),
        pytest.param(
            ") lait", "position 1: a closing parenthesis has no opening one", id="leading-closing"
        ),
        pytest.param("()", "position 1: empty parentheses", id="empty-parentheses"),
        pytest.param("lait ( )", "position 6: empty parentheses", id="empty-parentheses-later"),
        pytest.param("(", "position 1: an opening parenthesis is not followed by a term", id="("),
        # Dangling and misplaced operators.
        pytest.param("lait AND", "position 6: AND is not followed by a term", id="dangling-and"),
        pytest.param("lait OR", "position 6: OR is not followed by a term", id="dangling-or"),
        pytest.param("lait NOT", "position 6: NOT is not followed by a term", id="dangling-not"),
        pytest.param("(lait AND)", "position 7: AND is not followed by a term", id="and-then-)"),
        pytest.param("OR lait", "position 1: OR needs a term before it", id="leading-or"),
        pytest.param("(AND lait)", "position 2: AND needs a term before it", id="and-after-("),
        pytest.param(
            "lait AND OR fromage",
            "position 10: a term was expected between AND and OR",
            id="two-operators",
        ),
        # NOT alone.
        pytest.param("NOT", "position 1: NOT is not followed by a term", id="not-alone"),
        pytest.param(
            "NOT recrutement",
            "position 1: a query made only of NOT terms would match almost everything",
            id="only-not",
        ),
        pytest.param(
            "NOT a NOT b",
            "position 1: a query made only of NOT terms would match almost everything",
            id="only-nots-and",
        ),
        pytest.param(
            "NOT (a OR b)",
            "position 1: a query made only of NOT terms would match almost everything",
            id="not-of-group",
        ),
        pytest.param(
            "lait OR NOT bio",
            "position 9: a query made only of NOT terms would match almost everything",
            id="or-with-bare-not",
        ),
        # Quotes and phrases.
        pytest.param('"laiterie boréale', "position 1: this quote is not closed", id="open-quote"),
        pytest.param('lait "boréale', "position 6: this quote is not closed", id="open-quote-2"),
        pytest.param('""', "position 1: empty phrase", id="empty-phrase"),
        pytest.param('lait "  "', "position 6: empty phrase", id="blank-phrase"),
        pytest.param(
            '"« ! »"', "position 1: the phrase contains no letters or digits", id="punct-phrase"
        ),
        # Stars.
        pytest.param(
            "*",
            "position 1: a lone * matches nothing; end a word with it: rappel*",
            id="lone-star",
        ),
        pytest.param(
            "lait *", "position 6: a lone * matches nothing; end a word with it: rappel*", id="*2"
        ),
        pytest.param("rap*pel", "position 4: * may only end a word, as in rappel*", id="mid-*"),
        pytest.param("*rappel", "position 1: * may only end a word, as in rappel*", id="lead-*"),
        pytest.param("rappel**", "position 7: * may only end a word, as in rappel*", id="two-*"),
        pytest.param("-*", "position 1: '-*' contains no letters or digits", id="star-no-letter"),
        # NEAR.
        pytest.param(
            "a NEAR b",
            "position 3: NEAR: NEAR needs a distance in words, from 1 to 50, as in NEAR/5",
            id="near-without-slash",
        ),
        pytest.param(
            "a NEAR/ b",
            "position 3: NEAR/: NEAR needs a distance in words, from 1 to 50, as in NEAR/5",
            id="near-without-number",
        ),
        pytest.param(
            "a NEAR/x b",
            "position 3: NEAR/x: NEAR needs a distance in words, from 1 to 50, as in NEAR/5",
            id="near-not-a-number",
        ),
        pytest.param(
            "a NEAR/3x b",
            "position 3: NEAR/3x: NEAR needs a distance in words, from 1 to 50, as in NEAR/5",
            id="near-number-then-letters",
        ),
        pytest.param(
            "a NEAR/² b",
            "position 3: NEAR/²: NEAR needs a distance in words, from 1 to 50, as in NEAR/5",
            id="near-superscript-digit",
        ),
        pytest.param(
            "a NEAR/0 b",
            "position 8: NEAR/0: the distance must be from 1 to 50 words",
            id="near-zero",
        ),
        pytest.param(
            "a NEAR/51 b",
            "position 8: NEAR/51: the distance must be from 1 to 50 words",
            id="near-too-far",
        ),
        pytest.param(
            "a NEAR/" + "9" * 1900 + " b",
            "position 8: NEAR/" + "9" * 1900 + ": the distance must be from 1 to 50 words",
            id="near-huge-number",
        ),
        pytest.param("a NEAR/3", "position 3: NEAR/3 is not followed by a term", id="near-end"),
        pytest.param("NEAR/3 b", "position 1: NEAR/3 needs a term before it", id="near-start"),
        pytest.param(
            "a NEAR/3 NOT b",
            "position 10: NOT cannot follow NEAR/3: put it outside, NOT (a NEAR/3 b)",
            id="near-not",
        ),
        pytest.param(
            "(a AND b) NEAR/3 c", "position 1: NEAR/3 " + NEAR_OPERANDS, id="near-and-group"
        ),
        pytest.param(
            "a NEAR/3 (b OR NOT c)", "position 10: NEAR/3 " + NEAR_OPERANDS, id="near-not-inside"
        ),
        pytest.param(
            "a NEAR/3 (b c)", "position 10: NEAR/3 " + NEAR_OPERANDS, id="near-implicit-and"
        ),
        pytest.param(
            "a NEAR/3 b NEAR/2 c",
            "position 12: NEAR/2 cannot follow another NEAR; join pairs with AND: "
            "a NEAR/3 b AND b NEAR/2 c",
            id="near-chained",
        ),
        # Nesting deep enough to exhaust the parser's stack.
        pytest.param(
            "(" * 40 + "a" + ")" * 40,
            "position 33: more than 32 nested parentheses or NOTs",
            id="deep-parentheses",
        ),
        pytest.param(
            "a " + "NOT " * 40 + "b",
            "position 131: more than 32 nested parentheses or NOTs",
            id="deep-nots",
        ),
    ],
)
def test_malformed_queries_raise_query_error(query: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert str(caught.value) == message


def test_the_error_carries_its_position_and_the_query() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("(lait OR fromage")
    assert (caught.value.position, caught.value.query) == (17, "(lait OR fromage")
    assert caught.value.reason == "expected a closing parenthesis for the one at position 1"


def test_the_caret_display_puts_a_caret_under_the_position() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query('lait AND "boréale')
    assert caught.value.caret() == (
        'position 10: this quote is not closed\n  lait AND "boréale\n           ^'
    )


def test_the_caret_display_keeps_its_column_across_tabs_and_newlines() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("lait\tAND\n(fromage")
    lines = caught.value.caret().splitlines()
    assert lines[1:] == ["  lait AND (fromage", "                   ^"]


def test_the_caret_display_counts_wide_characters_as_two_columns() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("牛乳 rap*pel")
    assert caught.value.caret().splitlines()[2] == "  " + " " * 8 + "^"


def test_an_error_without_a_position_has_a_plain_caret_display() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("  ")
    assert caught.value.caret() == "the query is empty"
    assert caught.value.position is None


def test_folding_twice_changes_nothing_even_for_compatibility_capitals() -> None:
    # "ℌ" has no lower case of its own but decomposes to "H".
    assert fold("ℌ") == fold(fold("ℌ")) == "h"
    assert matches("h", "ℌ")


def test_ligatures_and_soft_hyphens_fold_to_plain_letters() -> None:
    query = parse_query("coeur boreale")
    assert query.matches(text_words("Le Cœur de la Bo\u00adréale"))


# --- vigie query (the command line) ------------------------------------------------------------


def test_vigie_query_shows_the_normalised_query_and_the_matching_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = "La Laiterie Boréale rappelle ses fromages\nRappel : la boréale\nMétéo\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["query", "Boréale NEAR/2 rappel*"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "query: boreale NEAR/2 rappel*",
        "match La Laiterie Boréale rappelle ses fromages",
        "match Rappel : la boréale",
        "-     Météo",
    ]


def test_vigie_query_shows_a_syntax_error_with_a_caret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["query", "(lait OR fromage"]) == 2
    assert capsys.readouterr().err == (
        "vigie: position 17: expected a closing parenthesis for the one at position 1\n"
        "  (lait OR fromage\n"
        "                  ^\n"
    )
