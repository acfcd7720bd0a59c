"""Data quality: validate each batch of mentions with a Great Expectations suite before loading.

Suites are JSON under version control in `expectations/`, loaded into an *ephemeral* GX context
(no `gx/` folder, no data docs: STACK.md gotchas 14-15). Validation returns the good rows and the
failing rows with the expectations they failed; failing rows never block the good ones.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from vigie.errors import ValidationFailed, one_line
from vigie.models import Mention, QuarantinedMention, SourceOutcome
from vigie.settings import Collection

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.validation_definition import ValidationDefinition

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
_GX_LOCK = threading.Lock()
# Modules Great Expectations imports for expectations our suites do not use (the KL divergence
# and KS tests): scipy.stats is 60 MB of a cycle's memory, and loads on first use instead.
# (altair cannot be deferred so: `import altair` reads the module's __spec__, which loads it.)
DEFERRED_MODULES = ("scipy.stats",)


def defer_imports(names: Sequence[str] = DEFERRED_MODULES) -> None:
    """Make each module of `names` not yet imported load only when an attribute of it is
    first read (importlib's LazyLoader); one that is not installed is left to fail where used."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


@dataclass(frozen=True, slots=True)
class ExpectationCheck:
    """One expectation's verdict on one batch, as the Prefect artifact shows it."""

    expectation: str
    column: str
    success: bool
    unexpected: int

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column})"


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    good: list[Mention]
    quarantined: list[QuarantinedMention]
    evaluated: int
    checks: tuple[ExpectationCheck, ...] = ()

    @property
    def failed_expectations(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.checks if not c.success)


@cache
def _validation_definition(suite_name: str) -> ValidationDefinition:
    defer_imports()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets some of its loggers to INFO and announces each ephemeral context there.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)

    path = EXPECTATIONS_DIR / f"{suite_name}.json"
    try:
        suite_json: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValidationFailed(
            f"expectation suite {path} cannot be read: {one_line(err, 300)}; "
            "restore expectations/ from the Vigie repository"
        ) from err
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{suite_name}-source")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(**suite_json))
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}-validation", data=batch, suite=suite)
    )


def warm_up(suite_names: tuple[str, ...] = ("mentions", "source_runs")) -> threading.Thread:
    """Import Great Expectations and build the suites' validation definitions in a thread.

    Importing GX and building an ephemeral context take seconds of CPU; a cycle starts this
    while it fetches (network-bound), so validation later finds everything ready. Errors are
    left for the real validation to raise.
    """

    def build() -> None:
        with _GX_LOCK:
            for name in suite_names:
                try:
                    _validation_definition(name)
                except Exception:  # raised again, with its message, when validation runs
                    return

    thread = threading.Thread(target=build, name="gx-warm-up", daemon=True)
    thread.start()
    return thread


def _raised(info: dict[str, Any]) -> str | None:
    # GX gives either one exception record or a record per metric.
    records = [info] if "raised_exception" in info else list(info.values())
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message"))
    return None


def run_suite(
    suite_name: str, frame: pd.DataFrame, parameters: dict[str, Any]
) -> tuple[list[ExpectationCheck], dict[int, list[str]]]:
    """Validate `frame` with `expectations/<suite_name>.json`.

    Returns each expectation's verdict and, per failing row position, the labels it failed.

    Raises:
        ValidationFailed: the suite cannot be loaded or an expectation could not be evaluated.
    """
    with _GX_LOCK:  # one GX context per process; its validation is not thread-safe
        result = _validation_definition(suite_name).run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={"result_format": "COMPLETE"},
        )
    checks: list[ExpectationCheck] = []
    reasons: dict[int, list[str]] = defaultdict(list)
    for outcome in result.results:
        config = outcome.expectation_config
        if config is None:
            raise ValidationFailed("GX returned a result without its expectation")
        check = ExpectationCheck(
            expectation=config.type,
            column=str(config.kwargs.get("column", "")),
            success=bool(outcome.success),
            unexpected=int(outcome.result.get("unexpected_count") or 0),
        )
        problem = _raised(outcome.exception_info)
        if problem is not None:
            raise ValidationFailed(f"{check.label} could not be evaluated: {problem[:300]}")
        checks.append(check)
        if not check.success:
            for index in outcome.result.get("unexpected_index_list") or []:
                reasons[int(index)].append(check.label)
    return checks, reasons


def mentions_frame(mentions: Sequence[Mention]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "mention_id": [m.mention_id for m in mentions],
            "source": [m.source for m in mentions],
            "url": [m.url for m in mentions],
            "title": [m.title for m in mentions],
            "summary": [m.summary for m in mentions],
            "published_at": pd.to_datetime([m.published_at for m in mentions], utc=True),
            "platform": [m.platform for m in mentions],
            "language": [m.language for m in mentions],
            "tier": [m.tier for m in mentions],
            "sentiment": pd.array([m.sentiment for m in mentions], dtype="Float64"),
        }
    )


def validate_mentions(
    mentions: Sequence[Mention],
    *,
    now: datetime,
    future_tolerance: timedelta,
    horizon: timedelta,
) -> ValidationOutcome:
    """Check a batch against `expectations/mentions.json`; split it into good and quarantined.

    Raises:
        ValidationFailed: the suite cannot be loaded or GX could not evaluate it.
    """
    if not mentions:
        return ValidationOutcome([], [], 0, ())
    import pandas as pd

    checks, reasons = run_suite(
        "mentions",
        mentions_frame(mentions),
        {
            "min_published": pd.Timestamp(now - horizon),
            "max_published": pd.Timestamp(now + future_tolerance),
        },
    )
    good = [m for i, m in enumerate(mentions) if i not in reasons]
    quarantined = [
        QuarantinedMention(mentions[i], tuple(labels)) for i, labels in sorted(reasons.items())
    ]
    return ValidationOutcome(good, quarantined, len(mentions), tuple(checks))


def has_new_content(outcomes: Sequence[SourceOutcome]) -> bool:
    """Whether any source returned a document this cycle (something for validation to read)."""
    return any(o.status == "ok" for o in outcomes)


def validate_source_runs(
    outcomes: Sequence[SourceOutcome], collection: Collection
) -> list[ExpectationCheck]:
    """Check the cycle's source runs against `expectations/source_runs.json`.

    A failure says the collector misbehaved; the runs are recorded anyway (they are the health
    history), and the failed checks are reported in the cycle summary. A cycle where no source
    returned a document (all unchanged or failed) has nothing new to check: Great Expectations
    is not even loaded, which keeps an unchanged re-poll fast.
    """
    if not has_new_content(outcomes):
        return []
    import pandas as pd

    frame = pd.DataFrame(
        {
            "source": [o.fetch.source for o in outcomes],
            "status": [o.status for o in outcomes],
            "duration_s": [o.fetch.duration_s for o in outcomes],
            "bytes": [o.fetch.size for o in outcomes],
            "items": [o.items for o in outcomes],
            "http_status": pd.array([o.fetch.http_status for o in outcomes], dtype="Int64"),
        }
    )
    # A fetch may overrun its deadline by one read timeout before it notices.
    max_duration = collection.deadline_s + collection.connect_timeout_s + collection.read_timeout_s
    checks, _ = run_suite(
        "source_runs",
        frame,
        {
            "max_duration_s": max_duration,
            "max_bytes": collection.max_bytes,
            "max_entries": collection.max_entries,
        },
    )
    return checks


def quarantine_shares(outcome: ValidationOutcome) -> dict[str, tuple[int, int]]:
    """Per source, (rows quarantined, rows validated) in this batch."""
    totals: Counter[str] = Counter(m.source for m in outcome.good)
    failed: Counter[str] = Counter(q.mention.source for q in outcome.quarantined)
    totals.update(failed)
    return {source: (failed.get(source, 0), total) for source, total in totals.items()}


def degraded_verdicts(
    shares: dict[str, tuple[int, int]], *, max_share: float, min_rows: int
) -> dict[str, bool]:
    """Which sources are degraded (True) or healthy (False) on this batch's evidence.

    A source whose batch is smaller than `min_rows` gets no verdict unless nothing failed.
    """
    verdicts: dict[str, bool] = {}
    for source, (failed, total) in shares.items():
        if failed == 0:
            verdicts[source] = False
        elif total >= min_rows:
            verdicts[source] = failed / total > max_share
    return verdicts


@task(name="validate-mentions", cache_policy=NO_CACHE)
def validate_mentions_task(
    mentions: Sequence[Mention], now: datetime, future_tolerance: timedelta, horizon: timedelta
) -> ValidationOutcome:
    """Validate the batch with Great Expectations; failing rows are set apart for quarantine."""
    return validate_mentions(mentions, now=now, future_tolerance=future_tolerance, horizon=horizon)


@task(name="validate-source-runs", cache_policy=NO_CACHE)
def validate_source_runs_task(
    outcomes: Sequence[SourceOutcome], collection: Collection
) -> list[ExpectationCheck]:
    """Check the cycle's source runs with Great Expectations."""
    return validate_source_runs(outcomes, collection)
