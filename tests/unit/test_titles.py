"""Dedup across outlets by normalised title (vigie/titles.py): the normaliser, and the decision
that makes copies of one headline within a week one mention seen in several places."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tasks.collect.normalise import SourceFields, canonical_url, identity_url, normalise_entries
from vigie.models import FeedEntry, Mention
from vigie.titles import TitleSighting, merge_same_titles, normalised_title, title_key

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
HEADLINE = "Laiterie Boréale rappelle trois fromages contaminés à la listeria"


def _mention(
    mention_id: str,
    source: str,
    title: str = HEADLINE,
    *,
    at: datetime = AT,
    platform: str = "news",
    author: str | None = None,
    topics: tuple[str, ...] = ("marque",),
) -> Mention:
    return Mention(
        mention_id=mention_id,
        source=source,
        platform=platform,
        tier=2,
        url=f"https://{source}.example/{mention_id}",
        title=title,
        summary="",
        author=author,
        published_at=at,
        collected_at=at,
        language="fr",
        story_id=f"story-{mention_id}",
        topics=topics,
    )


@pytest.mark.parametrize(
    ("title", "outlets", "expected"),
    [
        ("Laiterie  Boréale : RAPPEL de fromages !", (), "laiterie boreale rappel de fromages"),
        ("L’usine ferme—enfin", (), "l usine ferme enfin"),
        ("Rappel de fromages - Le Devoir", ("Le Devoir",), "rappel de fromages"),
        ("Rappel de fromages | LE DEVOIR", ("le devoir",), "rappel de fromages"),
        ("Rappel de fromages – Le Devoir", (None, "Le Devoir"), "rappel de fromages"),
        # A tail that names no outlet of the mention is part of the headline.
        ("Rappel de fromages - mise à jour", ("Le Devoir",), "rappel de fromages mise a jour"),
        ("Rappel-de-fromages", ("fromages",), "rappel de fromages"),
    ],
    ids=[
        "fold-case-accents-punctuation",
        "typographic",
        "dash-outlet",
        "pipe-outlet",
        "en-dash-author",
        "other-tail-kept",
        "hyphenated-word-kept",
    ],
)
def test_normalised_title(title: str, outlets: tuple[str | None, ...], expected: str) -> None:
    assert normalised_title(title, outlets) == expected


def test_same_headline_from_two_outlets_has_one_key() -> None:
    news_search = _mention("a", "Google Actualités", HEADLINE, author="La Presse")
    feed = _mention("b", "La Presse", f"{HEADLINE.upper()} - La Presse")
    assert title_key(news_search) is not None
    assert title_key(news_search) == title_key(feed)


@pytest.mark.parametrize(
    ("title", "platform"),
    [("Communiqué", "news"), ("Revue de presse", "news"), (HEADLINE, "social")],
    ids=["one-word", "short-generic", "social-post"],
)
def test_no_key_for_short_titles_and_posts(title: str, platform: str) -> None:
    assert title_key(_mention("a", "s", title, platform=platform)) is None


def test_same_title_from_two_outlets_within_a_week_is_one_mention_seen_twice() -> None:
    first = _mention("a", "Le Devoir", at=AT)
    later = _mention("b", "La Presse", at=AT + timedelta(days=6), topics=("rappel",))
    merged = merge_same_titles([later, first], [])
    assert len(merged) == 1
    (kept,) = merged
    assert kept.mention_id == "a"  # the outlet that published first
    assert kept.seen_in == ("La Presse",)
    assert kept.topics == ("marque", "rappel")


def test_eight_days_apart_they_are_two_mentions() -> None:
    first = _mention("a", "Le Devoir", at=AT)
    later = _mention("b", "La Presse", at=AT + timedelta(days=8))
    assert merge_same_titles([first, later], []) == [first, later]


def test_short_generic_titles_are_never_merged() -> None:
    one = _mention("a", "Le Devoir", "Communiqué")
    other = _mention("b", "La Presse", "Communiqué")
    assert merge_same_titles([one, other], []) == [one, other]


def test_social_posts_with_the_same_words_stay_two_mentions() -> None:
    one = _mention("a", "Bluesky", platform="social")
    other = _mention("b", "Mastodon", platform="social")
    assert merge_same_titles([one, other], []) == [one, other]


def test_a_copy_of_a_stored_headline_takes_its_id() -> None:
    stored_key = title_key(_mention("a", "Le Devoir"))
    assert stored_key is not None
    copy = _mention("b", "La Presse", at=AT + timedelta(days=2))
    (merged,) = merge_same_titles([copy], [TitleSighting(stored_key, "a", AT)])
    assert merged == replace(copy, mention_id="a")
    # Stored more than a week before: a new mention.
    old = [TitleSighting(stored_key, "a", AT - timedelta(days=8))]
    assert merge_same_titles([_mention("b", "La Presse")], old)[0].mention_id == "b"


def test_the_same_article_seen_again_is_left_as_it_is() -> None:
    key = title_key(_mention("a", "Le Devoir"))
    assert key is not None
    again = _mention("a", "Le Devoir")
    assert merge_same_titles([again], [TitleSighting(key, "a", AT)]) == [again]


def test_www_and_mobile_links_of_one_article_are_one_mention() -> None:
    links = [
        "https://www.ledevoir.com/economie/812345?utm_source=rss",
        "https://m.ledevoir.com/economie/812345",
        "https://ledevoir.com/economie/812345#comments",
    ]
    entries = [FeedEntry(HEADLINE, link, None, "", None, AT, "fr") for link in links]
    source = SourceFields("Le Devoir", "https://ledevoir.com/rss", "news", 2, None)
    mentions = normalise_entries(entries, source=source, collected_at=AT)
    assert len({m.mention_id for m in mentions}) == 1
    # The link kept is the one the source gave (a mobile path may differ on the desktop site).
    assert mentions[1].url == "https://m.ledevoir.com/economie/812345"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.example.org/a", "https://example.org/a"),
        ("https://m.example.org/a", "https://example.org/a"),
        ("https://m.me/page", "https://m.me/page"),
        ("https://www.com/", "https://www.com/"),
        ("https://mail.example.org/a", "https://mail.example.org/a"),
    ],
)
def test_identity_url(url: str, expected: str) -> None:
    assert identity_url(canonical_url(url)) == expected
