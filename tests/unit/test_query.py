"""Unit tests of the watch-query language (`vigie.query`): folding, words, parsing, matching."""

from __future__ import annotations

import pytest

from vigie.errors import QueryError
from vigie.query import And, Not, Or, Term, fold, parse_query, text_words


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


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message_part"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   \t ", "empty", id="blank"),
        pytest.param("(lait OR fromage", "not closed", id="unclosed-parenthesis"),
        pytest.param("((lait)", "not closed", id="unclosed-nested-parenthesis"),
        pytest.param("lait)", "no opening", id="stray-closing-parenthesis"),
        pytest.param(") lait", "no opening", id="leading-closing-parenthesis"),
        pytest.param("lait AND", "ends where a term was expected", id="dangling-and"),
        pytest.param("lait OR", "ends where a term was expected", id="dangling-or"),
        pytest.param("lait NOT", "ends where a term was expected", id="dangling-not"),
        pytest.param("OR lait", "OR is not followed", id="leading-or"),
        pytest.param("lait AND OR fromage", "OR is not followed", id="two-operators"),
        pytest.param('"laiterie boréale', "unterminated quote", id="unterminated-quote"),
        pytest.param('lait "boréale', "unterminated quote", id="unterminated-quote-later"),
        pytest.param("NOT recrutement", "only of NOT", id="only-not"),
        pytest.param("NOT a NOT b", "only of NOT", id="only-nots-and"),
        pytest.param("NOT (a OR b)", "only of NOT", id="not-of-group"),
        pytest.param("lait OR NOT bio", "only of NOT", id="or-with-bare-not"),
        pytest.param('""', "no letters", id="empty-phrase"),
        pytest.param("*", "no letters", id="bare-star"),
        pytest.param("()", "parenthesis", id="empty-parentheses"),
    ],
)
def test_malformed_queries_raise_query_error(query: str, message_part: str) -> None:
    with pytest.raises(QueryError, match=message_part):
        parse_query(query)


def test_unterminated_quote_at_the_start_is_reported_at_character_1() -> None:
    with pytest.raises(QueryError, match=r"character 1$"):
        parse_query('"boréale')


def test_unterminated_quote_error_points_at_the_quote_itself() -> None:
    with pytest.raises(QueryError, match=r"character 6$"):
        parse_query('lait "boréale')


def test_ligatures_and_soft_hyphens_fold_to_plain_letters() -> None:
    query = parse_query("coeur boreale")
    assert query.matches(text_words("Le Cœur de la Bo\u00adréale"))
