"""Great Expectations validation of a batch of mentions, with the suite from expectations/."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tasks.validate import validate_mentions
from vigie.models import Mention

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TOLERANCE = timedelta(minutes=30)
HORIZON = timedelta(days=365)


def _mention(n: int, **changes: object) -> Mention:
    base = Mention(
        mention_id=f"m{n}",
        source="Le Quotidien",
        platform="news",
        tier=1,
        url=f"https://quotidien.example/a/{n}",
        title=f"Article {n}",
        summary="",
        author=None,
        published_at=NOW - timedelta(hours=n),
        collected_at=NOW,
        language="fr",
        story_id=f"s{n}",
        topics=("marque",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _validate(batch: list[Mention]):  # type: ignore[no-untyped-def]
    return validate_mentions(batch, now=NOW, future_tolerance=TOLERANCE, horizon=HORIZON)


def test_a_clean_batch_passes_whole() -> None:
    outcome = _validate([_mention(1), _mention(2, language=None)])
    assert [m.mention_id for m in outcome.good] == ["m1", "m2"]
    assert outcome.quarantined == []
    assert outcome.failed_expectations == ()


def test_bad_rows_are_quarantined_with_their_reasons_and_good_rows_pass() -> None:
    batch = [
        _mention(1),
        _mention(2, url="javascript:alert(1)"),
        _mention(3, published_at=NOW + timedelta(days=2)),
        _mention(4, published_at=NOW - timedelta(days=800)),
        _mention(5, title=""),
        _mention(6, language="de"),
    ]
    outcome = _validate(batch)
    assert [m.mention_id for m in outcome.good] == ["m1"]
    reasons = {q.mention.mention_id: q.reasons for q in outcome.quarantined}
    assert reasons["m2"] == ("expect_column_values_to_match_regex(url)",)
    assert reasons["m3"] == ("expect_column_values_to_be_between(published_at)",)
    assert reasons["m4"] == ("expect_column_values_to_be_between(published_at)",)
    assert reasons["m5"] == ("expect_column_value_lengths_to_be_between(title)",)
    assert reasons["m6"] == ("expect_column_values_to_be_in_set(language)",)


def test_a_publication_within_the_future_tolerance_passes() -> None:
    outcome = _validate([_mention(1, published_at=NOW + timedelta(minutes=10))])
    assert len(outcome.good) == 1


def test_an_empty_batch_is_not_validated() -> None:
    outcome = _validate([])
    assert outcome.evaluated == 0 and outcome.good == [] and outcome.quarantined == []
