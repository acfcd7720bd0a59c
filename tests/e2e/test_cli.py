"""The `vigie` command as a user runs it: exit codes, output, one-line errors. Most commands run
in this process (`vigie_here`); two cycles at once and the demo run as processes of their own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.commands import VIGIE, vigie, vigie_here
from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.localservers import FeedServer, MailSink
from vigie.models import FetchResult, SourceOutcome
from vigie.settings import load_settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "vigie.example.toml"


def _scenario_config(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> Path:
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    sources = [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]
    return write_config(sources=sources, smtp_port=mail_sink.port)


def test_check_prints_what_will_be_watched(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    result = vigie_here("--config", str(config), "check")
    assert result.returncode == 0, result.stderr
    assert 'marque: ("laiterie boréale" OR boreale) NOT recrutement' in result.stdout
    assert "Le Quotidien du Nord [rss, news, tier 1]" in result.stdout
    assert "Awa Diallo <awa.diallo@laiterie-boreale.example>" in result.stdout


def test_check_names_the_token_variable_a_source_needs_and_warns_when_it_is_unset(
    write_config: ConfigWriter,
) -> None:
    """The watch may run with another environment, so an unset token is a warning, not a
    failure; the value itself is never printed."""
    api = {"name": "Agence (API)", "url": "https://agence.example/rss", "token_env": "AGENCE_KEY"}
    config = write_config(sources=[api], smtp_port=2525)
    unset = vigie_here("--config", str(config), "check", drop=["AGENCE_KEY"])
    assert unset.returncode == 0, unset.stderr
    assert "    token: from $AGENCE_KEY" in unset.stdout
    assert (
        "Warning: source 'Agence (API)': the token variable AGENCE_KEY is not set; it fails in "
        "this environment"
    ) in unset.stdout
    here = vigie_here("--config", str(config), "check", env={"AGENCE_KEY": "k-Secret-123"})
    assert here.returncode == 0, here.stderr
    assert "Warning: source" not in here.stdout
    assert "k-Secret-123" not in here.stdout + here.stderr


def test_check_warns_when_the_emails_prefect_links_point_at_this_machine(
    write_config: ConfigWriter,
) -> None:
    source = [{"name": "Le Quotidien", "url": "https://quotidien.example/rss"}]
    local = write_config(
        sources=source, smtp_port=2525, extra='[prefect]\npublic_ui_url = "http://127.0.0.1:4200"\n'
    )
    result = vigie_here("--config", str(local), "check")
    assert result.returncode == 0, result.stderr
    assert "point at http://127.0.0.1:4200, which only this machine can open" in result.stdout
    public = write_config(
        sources=source,
        smtp_port=2525,
        extra='[prefect]\npublic_ui_url = "https://vigie.laiterie-boreale.example"\n',
    )
    assert "public_ui_url" not in vigie_here("--config", str(public), "check").stdout


def test_the_config_file_can_come_from_the_environment(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    result = vigie_here("check", env={"VIGIE_CONFIG": str(config)})
    assert result.returncode == 0
    assert f"{config}: valid" in result.stdout


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("tier = 1 ", "tier = 9 ", "sources[0].tier: Input should be less than or equal to 3"),
        ('kind = "rss"', 'kind = "twitter"', "sources[0].kind: kind 'twitter' is not supported"),
        (
            "NOT recrutement'",
            "NOT (recrutement'",
            "watch[0].query: position 49: expected a closing parenthesis for the one at "
            "position 37",
        ),
        ('timezone = "America/Toronto"', 'timezone = "Mars/Olympus"', "organisation.timezone"),
        ("[email]", "[emial]", "emial: unknown key"),
        ('name = "Laiterie Boréale"', 'name = "Laiterie', "invalid TOML"),
    ],
    ids=[
        "tier-out-of-range",
        "unsupported-kind",
        "bad-query",
        "bad-timezone",
        "typo-section",
        "broken-toml",
    ],
)
def test_a_bad_config_exits_non_zero_with_one_line_naming_the_key(
    tmp_path: Path, replace: str, by: str, expected: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert replace in text
    config = tmp_path / "bad.toml"
    config.write_text(text.replace(replace, by, 1), encoding="utf-8")
    result = vigie_here("--config", str(config), "check", env={"VIGIE_SMTP_PASSWORD": "x"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"vigie: {config}: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_secret_is_named(tmp_path: Path) -> None:
    result = vigie_here("--config", str(EXAMPLE), "check", drop=["VIGIE_SMTP_PASSWORD"])
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "VIGIE_SMTP_PASSWORD is not set: email.username is configured, so the SMTP password "
        "must come from that environment variable; set it (export VIGIE_SMTP_PASSWORD=...) or "
        "remove email.username if the server needs no login"
    )


@pytest.mark.prefect
def test_run_once_prints_the_cycle_summary_as_json_and_status_reports_it(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    env = {"PREFECT_API_URL": prefect_harness}
    result = vigie_here("--config", str(config), "run", "--once", "--json", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["duration_s"] > 0
    assert set(summary["steps"]) >= {
        "fetch",
        "parse",
        "enrich",
        "validate",
        "load",
        "detect",
        "alert",
        "send",
    }
    assert summary["sources_ok"] == 3
    assert summary["sources_failed"] == {"Blogue du terroir": "not a feed: an HTML page"}
    assert summary["new_mentions"] == 6

    status = vigie_here("--config", str(config), "status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"Last cycle: {summary['cycle_id']}" in status.stdout
    assert "Blogue du terroir: error" in status.stdout
    assert "NOT A FEED since" in status.stdout
    assert "(answers with an HTML page instead of a feed)" in status.stdout
    assert "Open alerts: 0" in status.stdout


def test_status_on_a_locked_warehouse_is_one_clear_line(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    warehouse = config.parent / "wh" / "vigie.duckdb"
    warehouse.parent.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        result = vigie_here("--config", str(config), "status")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert result.stderr.startswith("vigie: the warehouse ")
    assert "locked by another process" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.prefect
def test_two_cycles_at_once_on_one_warehouse_both_complete(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    """A scheduled cycle and an incident run writing at the same moment: one waits for the
    other, both complete, nothing is lost."""
    urls = scenario.publish(feed_server, "calm", datetime.now(UTC))
    daily = {"name": "daily", "url": urls["Le Quotidien du Nord"], "platform": "news", "tier": 1}
    radio = {"name": "radio", "url": urls["Radio Boréale Info"], "platform": "news", "tier": 2}
    first = write_config(sources=[daily], smtp_port=mail_sink.port)
    second = first.with_name("incident.toml")
    second.write_text(
        first.read_text(encoding="utf-8").replace(
            f'name = "daily"\nurl = "{daily["url"]}"', f'name = "radio"\nurl = "{radio["url"]}"'
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    runs = [
        subprocess.Popen(
            [*VIGIE, "--config", str(config), "run", "--once", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for config in (first, second)
    ]
    summaries = []
    for run in runs:
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0, err[-2000:]
        summaries.append(json.loads(out))
    assert [s["new_mentions"] for s in summaries] == [3, 1]
    status = vigie_here("--config", str(first), "db", "info")
    assert status.returncode == 0, status.stderr
    assert re.search(r"^  mentions +4 rows$", status.stdout, re.MULTILINE)
    assert re.search(r"^  source_runs +2 rows$", status.stdout, re.MULTILINE)


def test_db_commands_export_back_up_and_restore(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    migrate = vigie_here("--config", str(config), "db", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert "applied 001_init, 002_buckets_and_health" in migrate.stdout
    assert "up to date" in vigie_here("--config", str(config), "db", "migrate").stdout

    export = vigie_here(
        "--config",
        str(config),
        "db",
        "export",
        "--since",
        "2026-01-01",
        "--until",
        "2027-01-01",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "out.csv"),
    )
    assert export.returncode == 0, export.stderr
    assert export.stdout.strip().endswith(f"0 mentions written to {tmp_path / 'out.csv'}")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("mention_id,")

    backup = vigie_here("--config", str(config), "db", "backup", str(tmp_path / "b.duckdb"))
    assert backup.returncode == 0 and (tmp_path / "b.duckdb").exists()
    restore = vigie_here("--config", str(config), "db", "restore", str(tmp_path / "b.duckdb"))
    assert restore.returncode == 0, restore.stderr

    bad = vigie_here(
        "--config", str(config), "db", "export", "--since", "yesterday", "--until", "2027-01-01"
    )
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    backwards = vigie_here(
        "--config", str(config), "db", "export", "--since", "2027-01-01", "--until", "2026-01-01"
    )
    assert backwards.returncode == 2
    assert backwards.stderr.strip() == "vigie: --until must come after --since"


def test_detect_series_writes_one_score_per_row(tmp_path: Path) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = ["timestamp,value"]
    for i in range(10 * 288):
        value = 500 if i == 9 * 288 + 100 else 20 + (i % 288) // 30
        rows.append(f"{(start + timedelta(minutes=5 * i)):%Y-%m-%d %H:%M:%S},{value}")
    series = tmp_path / "in.csv"
    series.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = vigie_here("detect-series", str(series), str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "timestamp,anomaly_score"
    assert len(lines) == len(rows)
    scores = [float(line.split(",")[1]) for line in lines[1:]]
    flagged = [i for i, s in enumerate(scores) if s >= 0.5]
    # Before each time of day has three past days (the warm-up), buckets are judged against the
    # recent level: the daily sawtooth's steps of the first days are not taken for bursts.
    assert flagged == [9 * 288 + 100], flagged


def test_detect_series_refuses_a_file_without_its_header(tmp_path: Path) -> None:
    series = tmp_path / "in.csv"
    series.write_text("2026-11-01 00:00:00,3\n", encoding="utf-8")
    result = vigie_here("detect-series", str(series), str(tmp_path / "out.csv"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"vigie: {series}: the first line must be the header timestamp,value"
    )


def test_score_text_writes_one_json_line_per_line_in() -> None:
    lines = ["Quel scandale, la Laiterie Boréale nous ment !", "Great cheese, I love it", "ok"]
    result = vigie_here("score-text", "--lang", "auto", input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["lang"] for s in scored] == ["fr", "en", "und"]
    assert [s["label"] for s in scored[:2]] == ["negative", "positive"]
    assert all(-1 <= s["score"] <= 1 for s in scored)


def test_ack_of_an_unknown_alert_is_one_clear_line(
    feed_server: FeedServer, mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = _scenario_config(feed_server, mail_sink, write_config)
    result = vigie_here("--config", str(config), "ack", "al-nope", "--by", "Awa Diallo")
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "vigie: there is no alert al-nope (vigie status lists open alerts)"
    )


@pytest.mark.prefect
def test_the_demo_runs_its_three_cycles_and_says_it_went_as_expected(tmp_path: Path) -> None:
    result = vigie("demo", "--workdir", str(tmp_path / "demo"), timeout=400)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "did not go as expected" not in result.stdout
    assert "Received emails (2)" in result.stdout
    assert "[Vigie][CRISE]" in result.stdout
    # The moved blog's notice goes to the cell's operator only.
    assert (
        "Email to chloe.martin@laiterie-boreale.example: [Vigie][SOURCE] La source ne renvoie "
        "pas de flux : Blogue du terroir"
    ) in result.stdout


def test_check_says_when_the_sources_of_one_host_cannot_all_be_polled_each_cycle(
    write_config: ConfigWriter,
) -> None:
    """Issue 23, item 2: 200 news searches on one host, 2 at a time, at about a second each
    (nothing measured yet) need 100 s, more than the fetch step's 10 s: one line says so, for
    that host only. Once the warehouse has measured them at 0.05 s each (5 s), it is silent."""
    searches = [
        {"name": f"Recherche {n}", "url": f"https://news.example/search?q=b{n}", "kind": "rss"}
        for n in range(200)
    ]
    feeds = [{"name": "Le Quotidien", "url": "https://quotidien.example/rss.xml"}]
    config = write_config(
        sources=[*searches, *feeds],
        smtp_port=2525,
        extra="per_host = 2",  # under [collection], where deadline_s = 10
    )
    result = vigie_here("--config", str(config), "check")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("Warning: host")]
    assert warnings == [
        "Warning: host news.example: 200 sources, 2 at a time (per_host), about 1.0 s each "
        "(assumed, nothing measured yet): about 100 s of fetching per cycle, more than the "
        "fetch step's 10 s (deadline_s) in each 10-min cycle; some wait for a later cycle "
        "(they go first then): raise per_host or deadline_s, or give them poll_minutes."
    ]
    settings = load_settings(config)
    now = datetime.now(UTC)
    measured = [
        SourceOutcome(
            FetchResult(s.name, s.url, "not_modified", now - timedelta(hours=1), 0.05),
            "not_modified",
        )
        for s in settings.sources
    ]
    with open_warehouse(settings.warehouse_path) as con:
        Store(con).load_cycle("c1", settings.sources, measured, [], [], now)
    measured_check = vigie_here("--config", str(config), "check")
    assert measured_check.returncode == 0, measured_check.stderr
    assert "Warning: host" not in measured_check.stdout
