"""Reading and scoring `timestamp,value` series for `vigie detect-series` (and its benchmark).

The bucket size is read from the timestamps (the median step); the detector then compares each
bucket with the same time of day over the past week (`tasks.detect.volume.seasonal_anomaly_scores`).
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from tasks.detect.volume import seasonal_anomaly_scores, volume_settings
from vigie.errors import VigieError
from vigie.settings import Detection

DAY_SECONDS = 86400


class SeriesError(VigieError):
    """The input series cannot be read; the message says where."""


def read_series(path: Path) -> tuple[list[str], list[float]]:
    """Timestamps (as written) and values of a CSV with the header `timestamp,value`."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as err:
        raise SeriesError(f"{path}: cannot be read: {err.strerror}") from err
    timestamps: list[str] = []
    values: list[float] = []
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise SeriesError(f"{path}: the first line must be the header timestamp,value")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                timestamps.append(row[0])
                values.append(float(row[1]))
            except (IndexError, ValueError) as err:
                raise SeriesError(f"{path}:{line}: expected timestamp,number") from err
    if len(values) < 2:
        raise SeriesError(f"{path}: needs at least two rows")
    return timestamps, values


def bucket_step(timestamps: Sequence[str]) -> timedelta:
    """The series' bucket: the median step between timestamps."""
    try:
        moments = [datetime.fromisoformat(t.strip()) for t in timestamps]
    except ValueError as err:
        raise SeriesError(f"a timestamp is not ISO 8601: {err}") from err
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(moments)]
    step = statistics.median(steps) if steps else 0.0
    if step <= 0:
        raise SeriesError("timestamps must increase")
    return timedelta(seconds=step)


def buckets_per_day(timestamps: Sequence[str]) -> int:
    """How many buckets make a day, from the median step between timestamps."""
    return max(1, round(DAY_SECONDS / bucket_step(timestamps).total_seconds()))


def score_series(
    timestamps: Sequence[str], values: Sequence[float], detection: Detection | None = None
) -> list[float]:
    """The volume detector's anomaly score for each row, with the live cycle's settings
    (`tasks.detect.volume.volume_settings`; the default `[detection]` unless `detection` is given),
    scores after an alert opens damped as the alert lifecycle would keep it open."""
    step = bucket_step(timestamps)
    settings = volume_settings(detection or Detection(), bucket=step)
    period = max(1, round(DAY_SECONDS / step.total_seconds()))
    return seasonal_anomaly_scores(values, period=period, settings=settings)


# A cell starting with one of these is read as a formula by spreadsheets (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """`cell` with a leading single quote when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def write_scores(path: Path, timestamps: Sequence[str], scores: Sequence[float]) -> None:
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "anomaly_score"])
            for timestamp, score in zip(timestamps, scores, strict=True):
                writer.writerow([spreadsheet_safe(timestamp), f"{score:.6f}"])
    except OSError as err:
        raise SeriesError(f"{path}: cannot be written: {err.strerror}") from err
