"""The watch cycle: collect every source, keep what the watch queries match, validate, load,
detect, alert and send; one run of the data flow of DESIGN.md.

Schedule: every `schedule.watch_every_minutes` (prefect.yaml, deployment `watch-cycle`).
Parameters: `config_path` (the TOML file), `now` (the cycle's clock, for replays and tests).
Requires: `VIGIE_SMTP_PASSWORD` when `email.username` is set.
A failing source is recorded and the run ends Completed; a broken warehouse or config fails it.
A cycle that opens or escalates an alert ends in a Completed state named for its level ("Crise",
"Alerte"), tagged `level:` and `topic:`; one whose emails failed ends Failed, named so
(tasks/publish/situation.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar, cast

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

import vigie  # noqa: F401  (turns telemetry off before Prefect is imported)
from flows.fetch_on_dask import fetch_due_sources
from flows.params import ConfigPath
from tasks.collect.fetch import collect_matching_task
from tasks.collect.health import check_source_health_task
from tasks.collect.normalise import parses_in_workers
from tasks.collect.schedule import (
    due_for_polling,
    fetch_states,
    next_polls,
    poll_policy,
    screen_fetched,
)
from tasks.detect.breaking import StoryAssessment
from tasks.detect.volume import TopicAssessment
from tasks.enrich.mentions import enrich_mentions_task
from tasks.enrich.mentions import warm_up as warm_up_enrichment
from tasks.enrich.quality import flag_degraded_sources_task
from tasks.enrich.validate import (
    ExpectationCheck,
    ValidationOutcome,
    validate_mentions_task,
    validate_source_runs_task,
)
from tasks.enrich.validate import warm_up as warm_up_validation
from tasks.load import (
    apply_retention_task,
    cluster_stories_task,
    detect_stories_task,
    detect_task,
    escalate_task,
    finish_cycle_task,
    load_cycle_task,
    prepare_warehouse,
    raise_alerts_task,
    send_outbox_task,
)
from tasks.notify.alerts import AlertChanges
from tasks.notify.delivery import DeliveryReport
from tasks.notify.drill import detection_settings
from tasks.notify.incident import with_extra_watches
from tasks.publish.events import emit_cycle_events_task, emit_watch_event_task
from tasks.publish.report import (
    StepClock,
    cycle_summary,
    publish_cycle_artifacts,
    read_top_stories_task,
)
from tasks.publish.situation import (
    cycle_verdict,
    final_state,
    publish_situation,
    read_situation_task,
)
from tasks.publish.ui import tag_flow_run
from vigie.memory import release_free_memory
from vigie.models import CycleSummary, SourceOutcome, SourceState
from vigie.settings import Secrets, Settings, Watch, load_secrets, load_settings

T = TypeVar("T")


@task(name="load-config", cache_policy=NO_CACHE)
def load_config_task(config_path: str) -> tuple[Settings, Secrets]:
    """Read and validate the configuration and the secrets it needs."""
    settings = load_settings(config_path)
    return settings, load_secrets(settings)


def _q(value: T) -> T:
    """Pass `value` to a task without Prefect walking through it.

    Prefect visits every element of a task's arguments (looking for upstream futures): about
    0.2 ms per mention, so 10 s per task for a first poll of 50,000 entries. quote() skips it;
    the task receives the value itself.
    """
    return cast(T, quote(value))


def _run_name() -> str:
    return f"watch-cycle {datetime.now(UTC):%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class CycleSteps:
    """What the steps every cycle shares produced: the watch cycle, incident cycles and
    drills all run them (`cycle_steps`), so a step added there reaches each."""

    outcomes: list[SourceOutcome]
    skipped: dict[str, str]
    entries: int
    matched: int
    checked: ValidationOutcome
    run_checks: list[ExpectationCheck]
    new_mentions: int
    quality_changes: list[str]
    health_changes: list[str]
    assessments: list[TopicAssessment]
    breaking: list[StoryAssessment]
    changes: AlertChanges
    escalations: list[str]
    delivery: DeliveryReport


def cycle_steps(
    settings: Settings,
    secrets: Secrets,
    states: dict[str, SourceState],
    *,
    cycle_id: str,
    now: datetime,
    config_path: str,
    clock: StepClock,
    drill: bool = False,
    incident: bool = False,
) -> CycleSteps:
    """Fetch, parse and match, enrich, cluster, validate, load, judge the sources, detect,
    alert, escalate and send: one cycle's steps, called from a flow.

    A drill's cycle (`drill=True`) runs the same steps over its own sources and topic, leaving
    out what only real cycles do: quality and health notices about the sources, and escalating
    other alerts; its detection does not judge collection coverage (tasks/notify/drill.py).
    An `incident` cycle polls every source at least every `poll_incident_max_minutes`.
    """
    path = settings.warehouse_path
    with clock.step("fetch"):
        # Sources with a longer poll interval, backing off after failures, or (adaptive
        # polling) not due by what they publish, wait their turn; a body already parsed is not.
        policy = poll_policy(settings)
        skipped: dict[str, str] = {}
        if drill:  # a drill's sources publish its exercise now: each is fetched, due or not
            due = list(settings.sources)
        else:
            due, skipped = due_for_polling(settings.sources, states, now, policy, incident=incident)
        fetched = fetch_due_sources(
            due, fetch_states(due, states, now, policy), settings.collection
        )
        fetched = screen_fetched(fetched, states, now, policy)
    # With new documents, GX (its import and contexts: STACK.md, 2-2.5 s) and the language and
    # sentiment models are loaded while the documents are parsed. Not before: during the fetch
    # they would hold the GIL the fetch threads need. A large batch, parsed by worker
    # processes, loads them once the workers have exited: together they would add about
    # 140 MB to the cycle's peak (issue 23), for 2-3 s of a first poll.
    has_documents = any(result.status == "ok" for result in fetched)
    size = sum(len(result.body or b"") for result in fetched)
    warm_up_after_parse = parses_in_workers(size, settings.collection.parse_process_count())
    validation_ready = None
    if has_documents and not warm_up_after_parse:
        validation_ready = warm_up_validation()
        warm_up_enrichment()
    with clock.step("parse"):  # and match: each document is matched where it is parsed
        collected = collect_matching_task(
            _q(settings.sources), _q(fetched), settings.watch, now, settings.collection
        )
        del fetched  # the documents: the outcomes keep their sizes
        release_free_memory()  # their pages, before enrichment and validation add theirs
        outcomes = collected.outcomes
    if has_documents and warm_up_after_parse:
        validation_ready = warm_up_validation()
    with clock.step("enrich"):
        matched = enrich_mentions_task(_q(collected.matched))
    with clock.step("stories"):
        matched, new_stories = cluster_stories_task(path, _q(matched), now)
    with clock.step("validate"):
        if validation_ready is not None:
            validation_ready.join()
        checked = validate_mentions_task(
            _q(matched),
            now,
            timedelta(minutes=settings.detection.future_tolerance_minutes),
            timedelta(days=settings.detection.horizon_days),
        )
        run_checks = validate_source_runs_task(_q(outcomes), settings.collection)
    with clock.step("load"):
        loaded = load_cycle_task(
            path,
            cycle_id,
            _q(settings.sources),
            _q(outcomes),
            _q(checked.good),
            _q(checked.quarantined),
            now,
            _q(new_stories),
            _q(next_polls(settings.sources, outcomes, collected.freshness, states, now, policy)),
        )
        quality_changes: list[str] = []
        health_changes: list[str] = []
        if not drill:
            quality_changes = flag_degraded_sources_task(path, _q(settings), _q(checked), now)
            health_changes = check_source_health_task(
                path, _q(settings), _q(collected.freshness), now
            )
    with clock.step("detect"):
        detection = detection_settings(settings) if drill else settings
        assessments = detect_task(path, settings.watch, _q(detection), now)
        breaking = detect_stories_task(path, settings.watch, _q(detection), now)
    with clock.step("alert"):
        changes = raise_alerts_task(
            path,
            _q(settings),
            _q(assessments),
            now,
            flow_run.ui_url,
            config_path,
            drill=drill,
            stories=_q(breaking),  # each story's copies: 100,000 at 10x (bench_load.py)
        )
        escalations = [] if drill else escalate_task(path, _q(settings), now)
    # Prefect events for automations; emitting never fails the cycle.
    emit_cycle_events_task(path, _q(changes), escalations, health_changes, flow_run.ui_url)
    with clock.step("send"):
        delivery = send_outbox_task(path, _q(settings), secrets)
    return CycleSteps(
        outcomes=list(outcomes),
        skipped=skipped,
        entries=collected.entries,
        matched=len(matched),
        checked=checked,
        run_checks=list(run_checks),
        new_mentions=loaded.new_mentions,
        quality_changes=list(quality_changes),
        health_changes=list(health_changes),
        assessments=list(assessments),
        breaking=list(breaking),
        changes=changes,
        escalations=list(escalations),
        delivery=delivery,
    )


@flow(name="watch-cycle", flow_run_name=_run_name)
def watch_cycle(
    config_path: ConfigPath = "vigie.toml",
    now: datetime | None = None,
    extra_watches: list[Watch] | None = None,
) -> CycleSummary:
    """Run one complete watch cycle and return its summary.

    Args:
        config_path: The Vigie configuration file (TOML); a relative path is read from the
            deployment's working directory.
        now: The cycle's clock (UTC), for replays and tests; empty: now.
        extra_watches: Topics watched in this run only, beside vigie.toml's (incident mode).
    """
    clock = StepClock()
    now = now or datetime.now(UTC)
    run_id: str | None = flow_run.id
    cycle_id = f"{now:%Y%m%dT%H%M%S}-{(run_id or uuid.uuid4().hex)[:8]}"
    settings, secrets = load_config_task(config_path)
    if extra_watches:
        settings = with_extra_watches(settings, extra_watches)
    path = settings.warehouse_path
    with clock.step("prepare"):
        states = prepare_warehouse(path, cycle_id, now, run_id)
    steps = cycle_steps(
        settings,
        secrets,
        states,
        cycle_id=cycle_id,
        now=now,
        config_path=str(Path(config_path).resolve()),
        clock=clock,
        incident=extra_watches is not None,  # incident mode's cycles pass their watches
    )
    checked = steps.checked
    summary = cycle_summary(
        cycle_id=cycle_id,
        clock=clock,
        outcomes=steps.outcomes,
        skipped=steps.skipped,
        collected=steps.entries,
        matched=steps.matched,
        quarantined=len(checked.quarantined),
        new_mentions=steps.new_mentions,
        alerts=steps.changes,
        assessments=steps.assessments,
        emails_sent=len(steps.delivery.sent),
        emails_failed=steps.delivery.failed,
        channels_sent=len(steps.delivery.channels_sent),
        channels_failed=steps.delivery.channels_failed,
        failed_checks=[c.label for c in (*checked.checks, *steps.run_checks) if not c.success],
        quality_changes=steps.quality_changes,
        health_changes=steps.health_changes,
        escalations=steps.escalations,
        breaking=steps.breaking,
    )
    apply_retention_task(path, settings.retention.raw_text_days, now)
    finish_cycle_task(path, cycle_id, datetime.now(UTC), _q(summary))
    # The dead man's switch automation expects this event (only when a source answered).
    emit_watch_event_task(path, _q(settings), cycle_id)
    tolerance = timedelta(minutes=settings.detection.future_tolerance_minutes)
    stories = read_top_stories_task(path, now, tolerance)
    changed = [*summary["alerts_opened"], *summary["alerts_escalated"]]
    situation, alerts = read_situation_task(path, changed)
    # Published from the flow's body, not from tasks: the artifacts belong to the flow run.
    language = settings.organisation.language
    publish_cycle_artifacts(
        summary, stories, checked, steps.run_checks, language=language, alerts=alerts
    )
    publish_situation(
        situation,
        now=datetime.now(UTC),
        language=language,
        timezone=settings.organisation.timezone,
        summary=summary,
    )
    verdict = cycle_verdict(summary, alerts, language)
    tag_flow_run(run_id, verdict.tags)
    # Prefect makes a returned state the run's final state ("Crise", "Emails en échec"...);
    # the caller gets the summary as the flow's result (cycle_result for a Failed one).
    return cast(CycleSummary, final_state(verdict, summary))
