"""Data quality: validate each batch of mentions with a Great Expectations suite before loading.

Suites are JSON under version control in `expectations/`, loaded into an *ephemeral* GX context
(no `gx/` folder, no data docs: STACK.md gotchas 14-15). Validation returns the good rows and the
failing rows with the expectations they failed; failing rows never block the good ones.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from vigie.errors import ValidationFailed
from vigie.models import Mention, QuarantinedMention

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.validation_definition import ValidationDefinition

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"
_GX_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    good: list[Mention]
    quarantined: list[QuarantinedMention]
    evaluated: int
    failed_expectations: tuple[str, ...]


@cache
def _validation_definition(suite_name: str) -> ValidationDefinition:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX announces each ephemeral context at INFO level; it says nothing a user needs.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    path = EXPECTATIONS_DIR / f"{suite_name}.json"
    try:
        suite_json: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValidationFailed(f"expectation suite {path} cannot be read: {err}") from err
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
        }
    )


def _raised(info: dict[str, Any]) -> str | None:
    # GX gives either one exception record or a record per metric.
    records = [info] if "raised_exception" in info else list(info.values())
    for record in records:
        if isinstance(record, dict) and record.get("raised_exception"):
            return str(record.get("exception_message"))
    return None


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

    frame = mentions_frame(mentions)
    with _GX_LOCK:  # one GX context per process; its validation is not thread-safe
        result = _validation_definition("mentions").run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={
                "min_published": pd.Timestamp(now - horizon),
                "max_published": pd.Timestamp(now + future_tolerance),
            },
            result_format={"result_format": "COMPLETE"},
        )
    reasons: dict[int, list[str]] = defaultdict(list)
    failed: list[str] = []
    for outcome in result.results:
        config = outcome.expectation_config
        if config is None:
            raise ValidationFailed("GX returned a result without its expectation")
        label = f"{config.type}({config.kwargs.get('column', '')})"
        problem = _raised(outcome.exception_info)
        if problem is not None:
            raise ValidationFailed(f"{label} could not be evaluated: {problem[:300]}")
        if outcome.success:
            continue
        failed.append(label)
        for index in outcome.result.get("unexpected_index_list") or []:
            reasons[int(index)].append(label)
    good = [m for i, m in enumerate(mentions) if i not in reasons]
    quarantined = [
        QuarantinedMention(mentions[i], tuple(labels)) for i, labels in sorted(reasons.items())
    ]
    return ValidationOutcome(good, quarantined, len(mentions), tuple(failed))


@task(name="validate-mentions", cache_policy=NO_CACHE)
def validate_mentions_task(
    mentions: Sequence[Mention], now: datetime, future_tolerance: timedelta, horizon: timedelta
) -> ValidationOutcome:
    """Validate the batch with Great Expectations; failing rows are set apart for quarantine."""
    return validate_mentions(mentions, now=now, future_tolerance=future_tolerance, horizon=horizon)
