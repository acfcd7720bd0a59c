"""Unit tests of the offline sentiment scorer (`vigie.sentiment`), on the packaged models."""

from __future__ import annotations

from importlib.resources import files

import pytest

from vigie.sentiment import (
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
