"""prefect.yaml read as plain data, and the warning when it disagrees with [schedule]."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.operations import run_clock
from tests.configs import MINIMAL_TOML, settings_from, write_toml
from vigie.deployments import (
    find_prefect_yaml,
    mismatch_warning,
    parse_deployments,
    read_deployments,
    schedule_mismatches,
)
from vigie.errors import ConfigError
from vigie.serve import require_api_url
from vigie.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

PREFECT_YAML = """
definitions:
  work_pool: &pool
    name: vigie-pool
deployments:
  - name: watch-cycle
    entrypoint: flows/watch_cycle.py:watch_cycle
    work_pool: *pool
    concurrency_limit: 1
    schedules:
      - interval: 600
  - name: digest
    entrypoint: flows/digest.py:send_digest
    parameters: {period: daily}
    work_pool: *pool
    schedules:
      - cron: "30  7 * * 1-5"
        timezone: America/Toronto
  - name: readiness
    entrypoint: flows/readiness.py:send_readiness_reminders
    work_pool: *pool
    schedules:
      - {cron: "0 9 1 * *", timezone: America/Toronto}
  - name: replay
    entrypoint: flows/replay.py:replay_detection
    work_pool: *pool
    schedules: null
"""


def _deployments(text: str = PREFECT_YAML) -> list:  # type: ignore[type-arg]
    import yaml

    return parse_deployments(yaml.safe_load(text))


def test_the_repository_prefect_yaml_agrees_with_the_example_configuration() -> None:
    settings = load_settings(ROOT / "vigie.example.toml")
    deployments = read_deployments(ROOT / "prefect.yaml")
    assert schedule_mismatches(settings, deployments) == []
    names = {d.name for d in deployments}
    assert {"watch-cycle", "digest", "readiness", "escalation-check", "maintenance"} <= names
    assert {"replay", "acknowledge-alert"} <= {d.name for d in deployments if d.manual}


def test_schedules_are_read_with_their_kind_time_zone_and_parameters() -> None:
    watch, digest, readiness, replay = _deployments()
    assert watch.schedules[0].interval_s == 600 and watch.concurrency_limit == 1
    assert digest.schedules[0].cron == "30 7 * * 1-5"  # spaces normalised
    assert digest.describe_schedules() == "cron 30 7 * * 1-5 (America/Toronto)"
    assert digest.parameters == {"period": "daily"}
    assert readiness.schedules[0].timezone == "America/Toronto"
    assert replay.manual and replay.describe_schedules() == "manual"


def test_a_configuration_that_matches_prefect_yaml_gives_no_warning(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)  # defaults: 10 min, 30 7 * * 1-5, 0 9 1 * *
    assert mismatch_warning(settings, _deployments()) is None


def test_a_different_watch_interval_is_one_line_naming_both_values(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + "\n[schedule]\nwatch_every_minutes = 5\n")
    warning = mismatch_warning(settings, _deployments(), "prefect.yaml")
    assert warning is not None and "\n" not in warning
    assert warning.startswith("Warning: prefect.yaml disagrees with")
    assert "watch-cycle runs every 600 s, schedule.watch_every_minutes is 5 (300 s)" in warning


def test_a_digest_cron_or_time_zone_not_in_prefect_yaml_is_reported(tmp_path: Path) -> None:
    other_cron = settings_from(tmp_path, MINIMAL_TOML + '\n[schedule]\ndigest_cron = "0 8 * * *"\n')
    [problem] = schedule_mismatches(other_cron, _deployments())
    assert problem.startswith("schedule.digest_cron '0 8 * * *' America/Toronto is not a digest")
    other_zone = settings_from(
        tmp_path, MINIMAL_TOML.replace('timezone = "America/Toronto"', 'timezone = "UTC"')
    )
    problems = schedule_mismatches(other_zone, _deployments())
    assert [p.split(" '")[0] for p in problems] == [
        "schedule.digest_cron",
        "schedule.readiness_cron",
    ]


def test_a_team_cron_without_a_readiness_schedule_is_reported(tmp_path: Path) -> None:
    text = MINIMAL_TOML + (
        '\n[[teams]]\nname = "Ventes"\nemails = ["ventes@laiterie-boreale.example"]\n'
        'cron = "0 8 * * 1"\n'
    )
    [problem] = schedule_mismatches(settings_from(tmp_path, text), _deployments())
    assert problem.startswith("teams[0].cron '0 8 * * 1' America/Toronto is not a readiness cron")


def test_an_escalation_check_slower_than_the_escalation_delay_is_reported(
    tmp_path: Path,
) -> None:
    text = PREFECT_YAML + (
        "  - name: escalation-check\n"
        "    entrypoint: flows/escalation_check.py:escalation_check\n"
        "    schedules: [{interval: 300}]\n"
    )
    settings = settings_from(tmp_path, MINIMAL_TOML + "\n[escalation]\ndelay_minutes = 4\n")
    assert schedule_mismatches(settings, _deployments(text)) == [
        "escalation-check runs every 300 s, more than escalation.delay_minutes (240 s): "
        "escalations would come late"
    ]
    settings = settings_from(tmp_path, MINIMAL_TOML + "\n[escalation]\ndelay_minutes = 5\n")
    assert schedule_mismatches(settings, _deployments(text)) == []


def test_a_missing_deployment_is_reported(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    without_digest = [d for d in _deployments() if d.name != "digest"]
    assert schedule_mismatches(settings, without_digest) == [
        "prefect.yaml has no digest deployment"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: vigie\n", "no `deployments` list"),
        ("deployments:\n  - name: x\n", "every deployment needs a name and an entrypoint"),
        (
            "deployments:\n  - {name: x, entrypoint: a.py:f, schedules: [{cron: null}]}\n",
            "a schedule needs cron, interval or rrule",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: a.py:f, schedules: [{interval: -5}]}\n",
            "interval: a number of seconds, more than 0",
        ),
        (
            "deployments:\n  - {name: x, entrypoint: a.py:f}\n  - {name: x, entrypoint: b.py:g}\n",
            "deployment names used twice: x",
        ),
        ("deployments: [\n", "not valid YAML"),
    ],
)
def test_a_broken_prefect_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write_toml(tmp_path, text, "prefect.yaml")
    with pytest.raises(ConfigError) as caught:
        read_deployments(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_prefect_yaml_is_found_here_first_then_beside_the_configuration(tmp_path: Path) -> None:
    here, project = tmp_path / "here", tmp_path / "project"
    here.mkdir()
    project.mkdir()
    config = write_toml(project, MINIMAL_TOML)
    assert find_prefect_yaml(config, cwd=here) is None
    beside = write_toml(project, PREFECT_YAML, "prefect.yaml")
    assert find_prefect_yaml(config, cwd=here) == beside
    local = write_toml(here, PREFECT_YAML, "prefect.yaml")
    assert find_prefect_yaml(config, cwd=here) == local


def test_serve_refuses_without_an_api_url_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        require_api_url({"PREFECT_API_URL": "  "})
    assert str(caught.value).startswith("PREFECT_API_URL is not set")
    assert require_api_url({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}).endswith("/api")


def test_a_run_started_early_acts_at_its_scheduled_time() -> None:
    now = datetime(2026, 11, 2, 13, 59, 55, tzinfo=UTC)
    scheduled = now + timedelta(seconds=5)
    assert run_clock(now, scheduled) == scheduled
    assert run_clock(now, now - timedelta(minutes=3)) == now  # late: now
    assert run_clock(now, None) == now


def test_serve_builds_each_deployment_with_its_schedules_parameters_and_triggers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigie.serve import runner_deployments

    monkeypatch.chdir(ROOT)  # entrypoints are read from the project folder, as serve does
    text = PREFECT_YAML.replace(
        "    schedules: null\n",
        "    schedules: null\n"
        "    triggers:\n"
        "      - type: event\n"
        "        enabled: true\n"
        "        match: {prefect.resource.id: 'vigie.alert.*'}\n"
        "        expect: [vigie.alert.opened]\n"
        "        parameters: {config_path: vigie.toml, since: '{{ event.occurred }}'}\n",
    )
    config = write_toml(tmp_path, MINIMAL_TOML)
    watch, digest, readiness, replay = runner_deployments(_deployments(text), config)
    assert (watch.name, watch.flow_name) == ("watch-cycle", "watch-cycle")
    assert watch.parameters == {"config_path": str(config.resolve())}
    assert watch.schedules[0].schedule.interval == timedelta(seconds=600)  # type: ignore[union-attr]
    assert digest.parameters == {"period": "daily", "config_path": str(config.resolve())}
    cron = digest.schedules[0].schedule
    assert (cron.cron, cron.timezone) == ("30 7 * * 1-5", "America/Toronto")  # type: ignore[union-attr]
    assert [s.schedule.cron for s in readiness.schedules] == ["0 9 1 * *"]  # type: ignore[union-attr]
    assert replay.schedules == [] and len(replay.triggers) == 1
    assert replay.triggers[0].name == "replay__automation_1"
    assert replay.triggers[0].expect == {"vigie.alert.opened"}  # type: ignore[union-attr]
    # The run a trigger starts reads the served configuration, not prefect.yaml's relative one.
    assert replay.triggers[0].parameters == {
        "config_path": str(config.resolve()),
        "since": "{{ event.occurred }}",
    }
