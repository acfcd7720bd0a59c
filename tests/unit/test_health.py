"""Health of the watch: verdicts on sources, freshness of their entries, and collection
coverage as detection reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.collect.health import entry_freshness, health_changes, judge_source
from tasks.detect.simulation import replay, scenarios
from tasks.detect.volume import assess_topic, window_coverage
from tasks.notify.emails import failure_words, source_health_notice
from tasks.notify.failures import Failure, network_down, read_failure
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.models import HealthChange, HealthVerdict, Mention, SourceCondition
from vigie.settings import Detection, Health

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HEALTH = Health()


def _condition(**changes: object) -> SourceCondition:
    condition = SourceCondition(
        name="Le Quotidien",
        consecutive_failures=0,
        last_error=None,
        newest_entry_at=NOW - HOUR,
        entry_gap_s=3600.0,
        health="ok",
        health_since=None,
    )
    return replace(condition, **changes)  # type: ignore[arg-type]


def _mention(source: str, published: datetime, collected: datetime = NOW) -> Mention:
    return Mention(
        mention_id=f"{source}{published.isoformat()}",
        source=source,
        platform="news",
        tier=2,
        url="https://example.org/a",
        title="t",
        summary="",
        author=None,
        published_at=published,
        collected_at=collected,
        language="fr",
        story_id="s",
    )


def test_a_source_is_failing_only_after_the_configured_failures() -> None:
    assert (
        judge_source(_condition(consecutive_failures=2, last_error="timed out"), HEALTH, NOW).state
        == "ok"
    )
    verdict = judge_source(_condition(consecutive_failures=3, last_error="timed out"), HEALTH, NOW)
    assert verdict.state == "failing"
    assert "3 failed cycle(s) in a row: timed out" in verdict.reason


def test_a_failing_source_stays_failing_until_a_fetch_succeeds() -> None:
    # One failure after a notice is not a recovery, and must not send a second notice.
    still = _condition(consecutive_failures=1, last_error="HTTP 500", health="failing")
    assert judge_source(still, HEALTH, NOW).state == "failing"
    recovered = _condition(consecutive_failures=0, health="failing")
    assert judge_source(recovered, HEALTH, NOW).state == "ok"


def test_an_html_page_is_reported_at_once() -> None:
    condition = _condition(consecutive_failures=1, last_error="not a feed: an HTML page")
    assert judge_source(condition, HEALTH, NOW).state == "not_a_feed"


def test_silence_is_measured_against_the_sources_usual_pace() -> None:
    hourly = _condition(newest_entry_at=NOW - timedelta(hours=30), entry_gap_s=3600.0)
    assert judge_source(hourly, HEALTH, NOW).state == "silent"
    # A weekly blog quiet for 30 hours is normal: ten times its gap is ten weeks.
    weekly = _condition(newest_entry_at=NOW - timedelta(hours=30), entry_gap_s=7 * 86400.0)
    assert judge_source(weekly, HEALTH, NOW).state == "ok"
    # A very busy feed is still given `min_silence_hours` before it is called silent.
    busy = _condition(newest_entry_at=NOW - timedelta(hours=5), entry_gap_s=60.0)
    assert judge_source(busy, HEALTH, NOW).state == "ok"
    unknown_pace = _condition(newest_entry_at=NOW - timedelta(days=300), entry_gap_s=None)
    assert judge_source(unknown_pace, HEALTH, NOW).state == "ok"


def test_changes_list_only_sources_whose_verdict_moved() -> None:
    conditions = [
        _condition(name="a"),
        _condition(name="b", consecutive_failures=5, last_error="timed out"),
        _condition(name="c", consecutive_failures=5, last_error="timed out", health="failing"),
        _condition(name="d", health="silent"),
    ]
    changes = {
        c.source: (c.previous, c.verdict.state) for c in health_changes(conditions, HEALTH, NOW)
    }
    assert changes == {"b": ("ok", "failing"), "d": ("silent", "ok")}


def test_freshness_ignores_entries_without_a_date() -> None:
    mentions = [
        _mention("a", NOW - 3 * HOUR),
        _mention("a", NOW - 2 * HOUR),
        _mention("a", NOW - HOUR),
        _mention("a", NOW),  # published_at == collected_at: no date in the feed
        _mention("b", NOW),
    ]
    freshness = entry_freshness(mentions)
    assert set(freshness) == {"a"}
    assert freshness["a"].newest_at == NOW - HOUR
    assert freshness["a"].gap_s == 3600.0


def test_coverage_is_the_covered_share_capped_and_not_judged_before_the_first_fetch() -> None:
    coverage = window_coverage(
        {1: 0.1, 2: 1.0000001},
        end=NOW,
        window=HOUR,
        windows=3,
        first_run=NOW - 150 * timedelta(minutes=1),
    )
    # Oldest window: only partly after the first run and no fetch in it; then small; then all.
    assert coverage == [0.0, 0.1, 1.0]


def test_windows_before_the_first_fetch_are_not_gaps() -> None:
    coverage = window_coverage({}, end=NOW, window=HOUR, windows=3, first_run=NOW)
    assert coverage == [1.0, 1.0, 1.0]
    assert window_coverage({}, end=NOW, window=HOUR, windows=2, first_run=None) == [1.0, 1.0]


def _assess(counts: list[int], coverage: list[float]) -> float:
    return assess_topic(
        "marque",
        counts,
        window_end=NOW,
        window=HOUR,
        first_seen=NOW - HOUR * len(counts),
        mentions=[],
        baseline_negative_share=0.0,
        detection=Detection(),
        coverage=coverage,
    ).volume_score


def test_volume_is_not_judged_in_a_window_collection_did_not_cover() -> None:
    counts = [10] * 168 + [60]
    assert _assess(counts, [1.0] * 169) >= 0.5
    assert _assess(counts, [1.0] * 168 + [0.2]) == 0.0


def test_a_gap_in_the_baseline_is_left_out_of_it() -> None:
    # Four of the last seven days were not collected: the baseline is the other three, so the
    # return to normal is calm and a real surge right after the gap is still seen.
    coverage = [1.0] * 72 + [0.0] * 96 + [1.0]
    assert _assess([10] * 72 + [0] * 96 + [10], coverage) < 0.5
    assert _assess([10] * 72 + [0] * 96 + [60], coverage) >= 0.5


def test_a_long_outage_raises_no_warning_once_detection_knows_of_it() -> None:
    scenario = next(s for s in scenarios() if s.name == "long-outage")
    assert set(replay(scenario).levels) == {"veille"}


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        ("not a feed: an HTML page", "html_page", None),
        ("timed out", "timeout", None),
        ("total deadline exceeded while reading the body", "timeout", None),
        ("HTTP 404 Not Found", "http_status", 404),
        ("HTTP 503", "http_status", 503),
        ("redirected to a non-HTTP URL (refused)", "redirect", None),
        ("too many redirects", "redirect", None),
        ("next page on another server (refused)", "redirect", None),
        ("connection failed: NameResolutionError", "dns", None),
        ("connection failed: NewConnectionError", "connection", None),
        ("connection failed: ProxyError", "connection", None),
        ("not a feed (SAXParseException)", "parse", None),
        ("not JSON", "parse", None),
        ("empty document", "parse", None),
        ("document declares XML entities (refused: expansion attack)", "parse", None),
        ("response larger than 5000000 bytes (size cap)", "too_large", None),
        ("fetch crashed (internal error)", "other", None),
        (None, "other", None),
    ],
)
def test_each_recorded_reason_is_read_as_its_kind(
    error: str | None, kind: str, status: int | None
) -> None:
    assert read_failure(error) == Failure(kind, status)  # type: ignore[arg-type]


def test_the_network_is_down_only_when_every_source_fails_to_connect_on_several_hosts() -> None:
    refused = "connection failed: NewConnectionError"
    dns = "connection failed: NameResolutionError"
    assert network_down([(refused, "a:80"), (dns, "b:443")], total=2)
    # One host down is that host, not the network.
    assert not network_down([(refused, "a:80"), (refused, "a:80")], total=2)
    # A source still answering, or failing another way, says the network works.
    assert not network_down([(refused, "a:80"), (dns, "b:443")], total=3)
    assert not network_down([(refused, "a:80"), ("HTTP 500", "b:443")], total=2)
    assert not network_down([], total=0)


def _change(state: str, **condition: object) -> HealthChange:
    verdict = HealthVerdict(state, "")  # type: ignore[arg-type]
    return HealthChange("Le Quotidien", "ok", verdict, _condition(**condition))


def test_an_english_notice_is_english_throughout_in_local_time(tmp_path: Path) -> None:
    text = MINIMAL_TOML.replace('language = "fr"', 'language = "en"') + CELL_TOML
    settings = settings_from(tmp_path, text)
    changes = [
        _change(
            "failing",
            consecutive_failures=3,
            last_error="connection failed: NameResolutionError",
            last_ok_at=None,
        ),
        replace(
            _change("silent", newest_entry_at=NOW - timedelta(hours=30)),
            source="Radio Nord",
        ),
    ]
    message = source_health_notice(settings, changes, now=NOW)
    assert message.subject == "[Vigie][SOURCE] 2 sources to check"
    assert message.recipients == ("vigie@laiterie-boreale.example",)  # no operator
    assert (
        "Found by the watch cycle of Wednesday 25 November 2026 at 07:00 (Toronto time)."
    ) in message.html
    assert (
        "<strong>Le Quotidien</strong> has never answered (3 failed cycles): the "
        "server&#39;s name cannot be found (DNS)."
    ) in message.html
    assert "Technical details: connection failed: NameResolutionError" in message.html
    assert (
        "<strong>Radio Nord</strong> has stopped publishing: its newest entry is 30 h old, "
        "while it usually publishes every 60 min."
    ) in message.html
    assert not any(word in message.html for word in ("Constat", "Source en panne", "depuis"))


def test_a_failure_is_said_plainly_whatever_its_status() -> None:
    assert failure_words("HTTP 403 Forbidden", "fr") == "le serveur refuse l’accès (erreur 403)"
    assert failure_words("HTTP 429", "en") == (
        "the server limits the number of requests (error 429)"
    )
    assert failure_words("HTTP 418 I'm a teapot", "fr") == (
        "le serveur répond par une erreur (code 418)"
    )
    assert failure_words("something new", "fr") == "erreur de collecte"
