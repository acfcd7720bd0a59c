"""prefect.yaml read as plain data: the deployments, their schedules, and whether they agree with
the configuration's `[schedule]`.

prefect.yaml is the single source of truth for what runs when: `prefect deploy --all` and
`vigie serve` both read it. The configuration's `[schedule]` values describe the same cadences
(the watch cycle's `due_sources` and the readiness periods use them), so `vigie check` and
`vigie serve` print one warning line when the two disagree. Nothing here imports Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from vigie.errors import ConfigError, one_line
from vigie.settings import Settings

PREFECT_YAML = "prefect.yaml"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One schedule of a deployment, as prefect.yaml writes it."""

    cron: str | None = None
    interval_s: float | None = None
    rrule: str | None = None
    timezone: str | None = None
    active: bool = True
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """`every 600 s`, `cron 30 7 * * 1-5 (America/Toronto)`, with `(inactive)` if so."""
        if self.cron is not None:
            text = f"cron {self.cron}"
        elif self.interval_s is not None:
            text = f"every {self.interval_s:g} s"
        else:
            text = f"rrule {self.rrule}"
        if self.timezone:
            text += f" ({self.timezone})"
        if self.parameters:
            text += " with " + ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return text if self.active else f"{text} (inactive)"


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """One entry of prefect.yaml's `deployments`: what `vigie serve` needs to serve it."""

    name: str
    entrypoint: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = ()
    concurrency_limit: int | None = None
    tags: tuple[str, ...] = ()
    triggers: tuple[Mapping[str, Any], ...] = ()

    @property
    def manual(self) -> bool:
        return not any(s.active for s in self.schedules)

    def describe_schedules(self) -> str:
        return "; ".join(s.describe() for s in self.schedules) or "manual"


def _cron(text: str) -> str:
    return " ".join(text.split())


def _schedule(raw: Any, where: str) -> ScheduleSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a schedule is a mapping (cron, interval or rrule)")
    interval = raw.get("interval")
    if raw.get("cron") is None and interval is None and raw.get("rrule") is None:
        raise ConfigError(f"{where}: a schedule needs cron, interval or rrule")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
    ):
        raise ConfigError(f"{where}.interval: a number of seconds, more than 0")
    return ScheduleSpec(
        cron=_cron(str(raw["cron"])) if raw.get("cron") is not None else None,
        interval_s=float(interval) if interval is not None else None,
        rrule=str(raw["rrule"]) if raw.get("rrule") is not None else None,
        timezone=str(raw["timezone"]) if raw.get("timezone") else None,
        active=bool(raw.get("active", True)),
        parameters=dict(raw.get("parameters") or {}),
    )


def parse_deployments(document: Any, source: str = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments of a loaded prefect.yaml document (YAML anchors already resolved)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("deployments"), list):
        raise ConfigError(
            f"{source}: no `deployments` list; use the prefect.yaml of the Vigie project"
        )
    found: list[DeploymentSpec] = []
    for index, raw in enumerate(document["deployments"]):
        where = f"{source}: deployments[{index}]"
        if not isinstance(raw, Mapping) or not raw.get("name") or not raw.get("entrypoint"):
            raise ConfigError(f"{where}: every deployment needs a name and an entrypoint")
        schedules = raw.get("schedules") or []
        if not isinstance(schedules, list):
            raise ConfigError(f"{where}.schedules: a list, or null for a manual deployment")
        limit = raw.get("concurrency_limit")
        if isinstance(limit, Mapping):  # {limit: 1, collision_strategy: ...}
            limit = limit.get("limit")
        found.append(
            DeploymentSpec(
                name=str(raw["name"]),
                entrypoint=str(raw["entrypoint"]),
                description=" ".join(str(raw.get("description") or "").split()),
                parameters=dict(raw.get("parameters") or {}),
                schedules=tuple(
                    _schedule(s, f"{where}.schedules[{i}]") for i, s in enumerate(schedules)
                ),
                concurrency_limit=int(limit) if limit is not None else None,
                tags=tuple(str(t) for t in raw.get("tags") or ()),
                triggers=tuple(raw.get("triggers") or ()),
            )
        )
    names = [d.name for d in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: deployment names used twice: {', '.join(duplicates)}")
    return found


def read_deployments(path: Path) -> list[DeploymentSpec]:
    """The deployments of the prefect.yaml at `path`; a missing or broken file is one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot read it ({err.strerror}); give the project's prefect.yaml with "
            "--prefect-yaml"
        ) from err
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{path}: not valid YAML ({one_line(err)}); fix it where it says"
        ) from err
    return parse_deployments(document, str(path))


def find_prefect_yaml(config_path: Path, cwd: Path | None = None) -> Path | None:
    """prefect.yaml in the current folder, else beside the configuration, else None."""
    for folder in (cwd or Path.cwd(), config_path.resolve().parent):
        candidate = folder / PREFECT_YAML
        if candidate.is_file():
            return candidate
    return None


def _by_name(deployments: Sequence[DeploymentSpec], name: str) -> DeploymentSpec | None:
    return next((d for d in deployments if d.name == name), None)


def _crons(deployment: DeploymentSpec) -> list[ScheduleSpec]:
    return [s for s in deployment.schedules if s.active and s.cron is not None]


def _check_crons(
    deployment: DeploymentSpec | None, name: str, wanted: Mapping[str, str], timezone: str
) -> list[str]:
    """Each configured cron (key -> cron) must be an active schedule in the org's time zone."""
    if deployment is None:
        return [f"prefect.yaml has no {name} deployment"]
    problems = []
    have = {(s.cron, s.timezone or "UTC") for s in _crons(deployment)}
    for key, cron in wanted.items():
        if (_cron(cron), timezone) not in have:
            listed = ", ".join(f"'{c}' {z}" for c, z in sorted(have, key=str)) or "none"
            problems.append(f"{key} '{_cron(cron)}' {timezone} is not a {name} cron ({listed})")
    return problems


def schedule_mismatches(settings: Settings, deployments: Sequence[DeploymentSpec]) -> list[str]:
    """Where prefect.yaml's schedules disagree with the configuration's [schedule]."""
    problems: list[str] = []
    schedule = settings.schedule
    timezone = settings.organisation.timezone
    watch = _by_name(deployments, "watch-cycle")
    if watch is None:
        problems.append("prefect.yaml has no watch-cycle deployment")
    else:
        every = {s.interval_s for s in watch.schedules if s.active and s.interval_s is not None}
        wanted = schedule.watch_every_minutes * 60
        if every != {wanted}:
            listed = ", ".join(f"{s:g} s" for s in sorted(every)) or "no interval"
            problems.append(
                f"watch-cycle runs every {listed}, schedule.watch_every_minutes is "
                f"{schedule.watch_every_minutes} ({wanted} s)"
            )
    problems += _check_crons(
        _by_name(deployments, "digest"),
        "digest",
        {"schedule.digest_cron": schedule.digest_cron},
        timezone,
    )
    readiness = {"schedule.readiness_cron": schedule.readiness_cron}
    for index, team in enumerate(settings.teams):
        if team.cron:
            readiness[f"teams[{index}].cron"] = team.cron
    problems += _check_crons(_by_name(deployments, "readiness"), "readiness", readiness, timezone)
    escalation = _by_name(deployments, "escalation-check")
    delay_s = settings.escalation.delay_minutes * 60
    if escalation is not None:
        intervals = [s.interval_s for s in escalation.schedules if s.active and s.interval_s]
        if intervals and min(intervals) > delay_s:
            problems.append(
                f"escalation-check runs every {min(intervals):g} s, more than "
                f"escalation.delay_minutes ({delay_s} s): escalations would come late"
            )
    return problems


def mismatch_warning(
    settings: Settings, deployments: Sequence[DeploymentSpec], source: Path | str = PREFECT_YAML
) -> str | None:
    """One line saying where prefect.yaml and [schedule] disagree, or None when they agree."""
    problems = schedule_mismatches(settings, deployments)
    if not problems:
        return None
    return (
        f"Warning: {source} disagrees with {settings.config_path} [schedule] "
        f"(prefect.yaml decides what runs): {'; '.join(problems)}"
    )
