"""Unit tests of the offline sentiment scorer (`vigie.sentiment`), on the packaged models."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from vigie.sentiment import (
    DENSE_FEATURE_NAMES,
    Language,
    SentimentResult,
    detect_language,
    load_model,
    model_resource_name,
    score_text,
    score_texts,
    tokenise,
)

NEGATIVE_FR = "Scandale : la Laiterie Boréale rappelle ses fromages contaminés, des enfants malades"
NEGATIVE_EN = "Terrible service, I want a refund, this company lies"
POSITIVE_FR = "Bravo à toute l'équipe, un produit excellent et un service client formidable !"
POSITIVE_EN = "What a wonderful day, I love this new phone, great job guys!"
FRENCH_HEADLINE = "La Laiterie Boréale annonce l'ouverture d'une nouvelle usine en Bretagne"
ENGLISH_HEADLINE = "Boreal Dairy announces the opening of a new factory in Brittany next year"


@pytest.mark.parametrize(
    ("text", "lang"), [(NEGATIVE_FR, "fr"), (NEGATIVE_EN, "en"), (NEGATIVE_FR, "auto")]
)
def test_clearly_negative_texts_are_negative(text: str, lang: str) -> None:
    result = score_text(text, lang)
    assert result.label == "negative"
    assert result.score < 0


@pytest.mark.parametrize(
    ("text", "lang"), [(POSITIVE_FR, "fr"), (POSITIVE_EN, "en"), (POSITIVE_EN, "auto")]
)
def test_clearly_positive_texts_are_positive(text: str, lang: str) -> None:
    result = score_text(text, lang)
    assert result.label == "positive"
    assert result.score > 0


def test_negation_lowers_the_score() -> None:
    assert (
        score_text("Ce fromage n'est pas bon", "fr").score
        < score_text("Ce fromage est bon", "fr").score
    )
    assert (
        score_text("This cheese is not good", "en").score
        < score_text("This cheese is good", "en").score
    )


def test_scores_are_in_range_and_labels_known() -> None:
    texts = [NEGATIVE_FR, NEGATIVE_EN, POSITIVE_FR, POSITIVE_EN, "", "   ", "😡😡😡", "http://x.y"]
    for lang in ("fr", "en", "auto"):
        for result in score_texts(texts, lang):
            assert -1.0 <= result.score <= 1.0
            assert result.label in {"negative", "neutral", "positive"}


def test_auto_detects_french_and_english_headlines() -> None:
    assert detect_language(FRENCH_HEADLINE) == "fr"
    assert detect_language(ENGLISH_HEADLINE) == "en"
    assert score_text(FRENCH_HEADLINE, "auto").lang == "fr"
    assert score_text(ENGLISH_HEADLINE, "auto").lang == "en"


def test_short_or_link_only_texts_are_undetermined_but_scored() -> None:
    assert detect_language("ok 👍") == "und"
    # Long once the links and users are counted, short once they are removed.
    assert detect_language("@user @someone https://example.com/a/very/long/path ok") == "und"
    result = score_text("ok 👍", "auto")
    assert result.lang == "und"
    assert -1.0 <= result.score <= 1.0


def test_explicit_lang_is_kept_in_the_result() -> None:
    assert score_text("ok 👍", "fr").lang == "fr"
    assert score_text(NEGATIVE_FR, "en").lang == "en"


def test_batch_equals_per_item() -> None:
    texts = [NEGATIVE_FR, NEGATIVE_EN, POSITIVE_FR, POSITIVE_EN, FRENCH_HEADLINE, "ok 👍", ""]
    for lang in ("fr", "en", "auto"):
        assert score_texts(texts, lang) == [score_text(text, lang) for text in texts]
    assert score_texts([], "auto") == []


def test_unknown_lang_is_rejected() -> None:
    with pytest.raises(ValueError, match="lang"):
        score_text("bonjour", "de")


def test_result_is_frozen() -> None:
    result = score_text(POSITIVE_EN, "en")
    assert isinstance(result, SentimentResult)
    with pytest.raises(AttributeError):
        result.score = 0.0  # type: ignore[misc]


def test_models_ship_inside_the_package() -> None:
    languages: tuple[Language, ...] = ("fr", "en")
    for lang in languages:
        resource = files("vigie") / "data" / model_resource_name(lang)
        assert resource.is_file()
        assert len(resource.read_bytes()) < 3_000_000
        model = load_model(lang)
        assert model.lang == lang
        assert len(model.feature_index) > 1000
        assert load_model(lang) is model  # loaded once


def test_tokeniser_handles_elisions_accents_negation_and_links() -> None:
    words = [
        token.text for token in tokenise("L'État n'a PAS réagi… @user #CriseLaitière http://t.co/x")
    ]
    assert words[:4] == ["etat", "n'", "a", "pas"]
    kinds = {token.kind for token in tokenise("@user http://t.co/x :) :( 😀")}
    assert kinds == {"user", "url", "emopos", "emoneg", "emoji"}
    assert [token.text for token in tokenise("I don't like it")] == ["i", "do", "not", "like", "it"]
    assert "crise" in words
    assert "laitiere" in words


HEADLINES_FR = Path(__file__).parents[1] / "fixtures" / "sentiment" / "headlines_fr.tsv"
POSITIVE_FR_HEADLINE = (
    "Bravo aux chefs de la Laiterie Boréale : un fromage délicieux et un accueil formidable"
)


def french_headlines() -> list[tuple[str, str]]:
    lines = HEADLINES_FR.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return [(label, text) for label, text in rows]


def test_a_positive_french_headline_is_positive() -> None:
    # The first French model, trained on often ironic tweets, read this as negative.
    result = score_text(POSITIVE_FR_HEADLINE, "fr")
    assert result.label == "positive"
    assert result.score > 0


def test_hand_labelled_french_headlines_keep_their_polarity() -> None:
    headlines = french_headlines()
    assert len(headlines) == 60
    results = score_texts([text for _, text in headlines], "fr")
    inverted = [
        text
        for (label, text), result in zip(headlines, results, strict=True)
        if {label, result.label} == {"positive", "negative"}
    ]
    # Measured: the first French model inverted 3 of the 40 polar headlines (the "Bravo" one
    # among them), this one 2: a positive one naming a disease, and "conquis" (won over), which
    # the translated VADER lexicon scores as "conquered". 48 then 47 of 60 labels right.
    assert len(inverted) <= 2, inverted
    assert POSITIVE_FR_HEADLINE not in inverted
    correct = sum(
        1 for (label, _), result in zip(headlines, results, strict=True) if label == result.label
    )
    assert correct >= 45  # of 60: three in four


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_lexicon_valence_never_argues_for_the_opposite_class(lang: Language) -> None:
    model = load_model(lang)
    weights = {name: model.dense_weights[index] for index, name in enumerate(DENSE_FEATURE_NAMES)}
    negative, positive = 0, 2
    # Values grow with positive words, positive emoticons, and (lex_neg_sum, lex_min are <= 0)
    # fewer negative ones; lex_neg_count and emoticon_neg grow with negative cues.
    for name in ("lex_pos_sum", "lex_neg_sum", "lex_pos_count", "lex_max", "lex_min"):
        assert weights[name][positive] >= weights[name][negative], name
    for name in ("lex_neg_count", "emoticon_neg"):
        assert weights[name][positive] <= weights[name][negative], name
    assert weights["emoticon_pos"][positive] >= weights["emoticon_pos"][negative]
