"""Enrichment of matched mentions: language (configured or detected) and sentiment."""

from __future__ import annotations

from datetime import UTC, datetime

from tasks.enrich.mentions import enrich_mentions
from vigie.models import Mention

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _m(n: int, title: str, language: str | None = None) -> Mention:
    return Mention(
        f"m{n}",
        "s",
        "news",
        1,
        f"https://x.example/{n}",
        title,
        "",
        None,
        NOW,
        NOW,
        language,
        f"s{n}",
        ("marque",),
    )


def test_language_is_detected_when_the_source_does_not_say() -> None:
    fr, en, short = enrich_mentions(
        [
            _m(1, "Scandale : la Laiterie Boréale rappelle ses fromages contaminés"),
            _m(2, "Boreale dairy recalls contaminated cheese after children fall ill"),
            _m(3, "ok"),
        ]
    )
    assert (fr.language, en.language, short.language) == ("fr", "en", None)


def test_a_configured_language_is_kept() -> None:
    [mention] = enrich_mentions([_m(1, "Boreale dairy recalls cheese", language="fr")])
    assert mention.language == "fr"


def test_sentiment_follows_the_tone_in_both_languages() -> None:
    scored = enrich_mentions(
        [
            _m(
                1,
                "Scandale : la Laiterie Boréale rappelle ses fromages contaminés, enfants malades",
            ),
            _m(2, "J'adore les fromages de la Laiterie Boréale, merci pour ce super produit !"),
            _m(3, "Terrible service from Boreale, I want a refund, this company lies"),
            _m(4, "Great news: Boreale wins the best cheese award, well deserved"),
        ]
    )
    signs = [m.sentiment is not None and m.sentiment > 0 for m in scored]
    assert signs == [False, True, False, True]
    assert all(m.sentiment is not None and -1 <= m.sentiment <= 1 for m in scored)


def test_order_and_identity_are_kept() -> None:
    batch = [_m(i, f"Titre numéro {i} de la Laiterie Boréale à Montréal") for i in range(5)]
    assert [m.mention_id for m in enrich_mentions(batch)] == [m.mention_id for m in batch]
