"""Great Expectations validation of a batch of mentions, with the suite from expectations/."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tasks.enrich.validate import validate_mentions, validate_source_runs
from vigie.models import FetchResult, Mention, SourceOutcome
from vigie.settings import Collection

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


def test_null_ids_ftp_urls_and_oversized_text_are_quarantined() -> None:
    batch = [
        _mention(1),
        _mention(2, mention_id=None),
        _mention(3, url="ftp://quotidien.example/a/3"),
        _mention(4, summary="x" * 4001),
        _mention(5, sentiment=1.5),
    ]
    outcome = _validate(batch)
    reasons = {q.mention.url: q.reasons for q in outcome.quarantined}
    assert [m.mention_id for m in outcome.good] == ["m1"]
    assert reasons["https://quotidien.example/a/2"] == (
        "expect_column_values_to_not_be_null(mention_id)",
    )
    assert reasons["ftp://quotidien.example/a/3"] == ("expect_column_values_to_match_regex(url)",)
    assert reasons["https://quotidien.example/a/4"] == (
        "expect_column_value_lengths_to_be_between(summary)",
    )
    assert reasons["https://quotidien.example/a/5"] == (
        "expect_column_values_to_be_between(sentiment)",
    )


def test_each_expectation_reports_its_verdict_and_count() -> None:
    outcome = _validate([_mention(1), _mention(2, url="ftp://x"), _mention(3, url="ftp://y")])
    by_label = {c.label: c for c in outcome.checks}
    assert by_label["expect_column_values_to_match_regex(url)"].success is False
    assert by_label["expect_column_values_to_match_regex(url)"].unexpected == 2
    assert by_label["expect_column_values_to_be_unique(mention_id)"].success is True
    assert outcome.failed_expectations == ("expect_column_values_to_match_regex(url)",)


def _run(source: str, duration: float, size: int, items: int) -> SourceOutcome:
    fetch = FetchResult(source, "http://127.0.0.1/f", "ok", NOW, duration, 200, b"x" * size)
    return SourceOutcome(fetch, "ok", items=items)


def test_source_runs_within_the_collection_limits_pass() -> None:
    checks = validate_source_runs([_run("a", 0.4, 10, 5), _run("b", 2.0, 100, 50)], Collection())
    assert checks and all(c.success for c in checks)


def test_a_cycle_where_nothing_changed_has_no_source_run_to_check() -> None:
    unchanged = FetchResult("a", "http://127.0.0.1/f", "not_modified", NOW, 30.0, 304)
    # Even a run beyond the limits: without a document there is nothing new to validate.
    assert validate_source_runs([SourceOutcome(unchanged, "not_modified")], Collection()) == []


def test_a_source_run_beyond_the_limits_fails_its_checks() -> None:
    limits = Collection(deadline_s=5, connect_timeout_s=1, read_timeout_s=1, max_entries=10)
    checks = validate_source_runs([_run("a", 30.0, 10, 50)], limits)
    failed = {c.label for c in checks if not c.success}
    assert failed == {
        "expect_column_values_to_be_between(duration_s)",
        "expect_column_values_to_be_between(items)",
    }


_VALIDATE_IN_A_FRESH_PROCESS = """
import sys
from datetime import UTC, datetime, timedelta
from tasks.enrich.validate import validate_mentions
from vigie.models import Mention

now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
mention = Mention(
    mention_id="m1", source="Le Quotidien", platform="news", tier=1,
    url="https://quotidien.example/a/1", title="Article 1", summary="", author=None,
    published_at=now - timedelta(hours=1), collected_at=now, language="fr", story_id="s1",
    topics=("marque",),
)
outcome = validate_mentions(
    [mention], now=now, future_tolerance=timedelta(minutes=30), horizon=timedelta(days=365)
)
print(len(outcome.good), type(sys.modules["scipy.stats"]).__name__)
import scipy.stats
print(scipy.stats.kstest([0.1, 0.5, 0.9], "uniform").statistic < 1)
"""


def test_validation_leaves_the_statistics_great_expectations_imports_unloaded_until_used() -> None:
    """GX imports scipy.stats (60 MB) for expectations our suites do not use: it stays a lazy
    module through a validation, and works when something does use it."""
    done = subprocess.run(
        [sys.executable, "-c", _VALIDATE_IN_A_FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "GX_ANALYTICS_ENABLED": "false"},
    )
    assert done.stdout.split() == ["1", "_LazyModule", "True"]
