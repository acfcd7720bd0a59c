"""`cli.querytest`: which stored mentions a query matches, which it nearly matches and why,
which term brings what, and how it overlaps the configured watches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cli.querytest import judge, query_terms, render_query_test, try_query
from vigie.query import parse_query, render_query
from warehouse.mention_texts import StoredText

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _text(title: str, minutes_ago: int = 0, topics: tuple[str, ...] = ("marque",)) -> StoredText:
    return StoredText(
        mention_id=f"m{minutes_ago}-{len(title)}",
        source="Le Quotidien du Nord",
        published_at=NOW - timedelta(minutes=minutes_ago),
        title=title,
        summary="",
        author=None,
        topics=topics,
        url="https://quotidien-du-nord.example/a",
    )


def test_terms_are_split_by_whether_a_not_is_above_them() -> None:
    terms = query_terms(parse_query('("laiterie boréale" OR boreale) NOT (recrutement OR emploi*)'))
    assert [render_query(t) for t in terms.positive] == ['"laiterie boreale"', "boreale"]
    assert [render_query(t) for t in terms.negative] == ["recrutement", "emploi*"]


def test_a_mention_only_a_not_keeps_out_is_excluded_by_it() -> None:
    node = parse_query("boreale NOT recrutement")
    judged = judge(node, query_terms(node), _text("La Laiterie Boréale recrute (recrutement)"))
    assert not judged.matched
    assert judged.near_miss
    assert judged.why() == "excluded by NOT recrutement"


def test_a_mention_with_some_terms_says_which_it_has_and_lacks() -> None:
    node = parse_query("boreale AND (rappel* OR listeria)")
    judged = judge(node, query_terms(node), _text("La Laiterie Boréale agrandit son usine"))
    assert judged.near_miss
    assert judged.why() == "has boreale; lacks rappel*, listeria"


def test_a_near_too_far_apart_is_named() -> None:
    node = parse_query("boreale NEAR/3 rappel*")
    judged = judge(
        node, query_terms(node), _text("La Laiterie Boréale refuse de commenter le rappel")
    )
    assert judged.near_miss
    assert judged.why() == "has boreale, rappel*; NEAR: too far apart"


def test_a_mention_without_any_term_is_not_a_near_miss() -> None:
    node = parse_query("boreale")
    judged = judge(node, query_terms(node), _text("Météo : un week-end doux"))
    assert not judged.matched
    assert not judged.near_miss


def test_the_result_counts_matches_near_misses_terms_and_watch_overlap() -> None:
    texts = [
        _text("Rappel Boréale : quels lots sont touchés ?", 1, ("marque", "rappel")),
        _text("La Laiterie Boréale recrute (recrutement)", 2),
        _text("La Laiterie Boréale agrandit son usine", 3),
        _text("Rappel de fromages : risque de listeria", 4, ("rappel",)),
        _text("Boréale : rappel de trois fromages", 5, ("marque", "rappel")),
    ]
    node = parse_query("boreale AND rappel* NOT recrutement")
    result = try_query(
        node, texts, since=NOW - timedelta(days=1), in_window=5, watches=["marque"], limit=1
    )
    assert (result.tested, result.matched, result.near_misses, result.excluded) == (5, 2, 3, 0)
    assert dict(result.term_counts) == {"boreale": 4, "rappel*": 3, "NOT recrutement": 1}
    overlap = {w.watch: (w.stored, w.also_matched) for w in result.watches}
    assert overlap == {"marque": (4, 2), "rappel": (3, 2)}
    # Newest first; the sample is bounded by the limit, the counts are not.
    assert [j.text.title for j in result.matched_sample] == [texts[0].title]
    assert len(result.near_miss_sample) == 1
    as_json = result.as_dict()
    assert as_json["matched"] == 2
    assert as_json["matched_sample"][0]["found"] == ["boreale", "rappel*"]


def test_what_a_not_kept_out_comes_first_among_near_misses() -> None:
    texts = [
        _text("La Laiterie Boréale agrandit son usine", 1),
        _text("Rappel Boréale : recrutement suspendu", 2),
    ]
    node = parse_query("boreale AND rappel* NOT recrutement")
    result = try_query(node, texts, since=NOW, in_window=2, watches=[], limit=10)
    assert [j.why() for j in result.near_miss_sample] == [
        "excluded by NOT recrutement",
        "has boreale; lacks rappel*",
    ]


def test_stored_text_reaches_the_terminal_on_one_line_without_controls() -> None:
    hostile = "Boréale\x1b[2J\r\nrappel\u202e" + "x" * 500
    result = try_query(
        parse_query("boreale"),
        [_text(hostile)],
        since=NOW - timedelta(days=1),
        in_window=1,
        watches=["marque"],
        limit=5,
    )
    lines = render_query_test(result)
    assert not any(ch in line for line in lines for ch in "\x1b\r\n\u202e")
    assert max(len(line) for line in lines) < 200
    assert "Matched: 1 of 1 (100%)" in lines


def test_a_window_larger_than_what_was_tested_says_so() -> None:
    result = try_query(
        parse_query("boreale"),
        [_text("Boréale", 1), _text("Météo", 2)],
        since=NOW - timedelta(days=1),
        in_window=150_000,
        watches=["marque"],
        limit=5,
    )
    assert render_query_test(result)[1].endswith(": the newest 2 of 150000 tested")
