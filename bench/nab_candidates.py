"""Prototype: a learned one-step predictor's error turned into Ahmad et al.'s anomaly likelihood.

Issue 19 asks whether a detector of another design than the seasonal robust z generalises
better on NAB. The design here (written from the papers, not from NAB's code):
1. one-step predictors of the (signed-log) value learned online per series: an EWMA level
   (`level`), the live detector's seasonal median (`seasonal`), and a pattern memory
   (`discord`: the distance of the last `length` values to their nearest earlier window, a left
   matrix profile); each one's error in units of its running mean absolute error, the most
   surprised counting, squashed into [0, 1) with tanh(r / 3), is the raw score (rises only, or
   both directions with `--drops`);
2. the anomaly likelihood (Ahmad, Lavin, Purdy & Agha 2017): the mean of the last `short` raw
   scores against a Gaussian fitted to the last `history` such means, its tail probability Q,
   and the score x / (1 + x) of x = log10(Q) / -level_decades (0.5 at Q = 1e-5 by default, as
   NAB's HTM detector, without its ceiling at 1e-10);
3. after a score >= 0.5, the scores are damped for `calm` rows (one event, one detection).

Candidates are compared only by `bench_nab_cv.py`'s folds (leave a NAB category out; each of
the five visible tweet series left out, trained on the 52 others), scored by its `FastScorer`.
Each grid of `GRIDS` was one run, in the order written; what each fold chose is printed.

Held-out figures (standard profile, threshold optimised; the live detector: NAB 53 37.8,
low-FP 27.7, tweets 66.8): first 39.6 / 27.7 / 60.0, second 38.7 / 23.7 / 56.0, discord
31.4 / 18.6 / 64.4, time 44.4 / 31.8 / 64.2, discord2 39.4 / 25.3 / 64.0, memory 44.3 / 32.5 /
66.0, blend 45.0 / 28.0 / 75.7, units 45.0 / 28.0 / 75.7, spans and seasonal 48.9 / 33.0 /
75.7 (every fold chose `WITH_LONG_AVERAGE`; 48.0 at the fixed threshold 0.5). The first
grids printed every candidate's in-sample figures, so the later grids were designed knowing
them: the last figures are optimistic by an unknown amount. Not the detector: on the
synthetic scenarios (`--scenarios 30`, volume alone) it catches no slow burn within 12 hours
(median hour 15), scores >= 0.5 on 7 of 30 calm weeks, and it needs two months of history (the
live cycle reads one week); with the time of day as a third model it catches the slow burn
(28/30) but the viral story in its first hour on 2/30 only, and NAB falls to 35-38, tweets 53.

    python bench/nab_candidates.py --nab /work/shared/bench [--grid NAME] [--scenarios 30]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from bench_nab_cv import (
    DEFAULT_BENCH,
    REFERENCES,
    Candidate,
    FastScorer,
    NabSeries,
    _scores,
    choose,
    cross_validate,
    figures,
    header,
    load,
    reference_scores,
    row,
)

import vigie  # noqa: F401  (telemetry off)
from tasks.detect.volume import SeasonalSettings, _robust_z, signed_log

# The live detector's scores are the same for every candidate: computed once per run.
LIVE_CACHE: Path | None = None
# The discord distances of a series, shared by the candidates that differ only after them.
_DISCORDS: dict[tuple[str, int, int, bool], np.ndarray] = {}


@dataclass(frozen=True)
class Likelihood:
    """One candidate: the predictor, the likelihood's windows and the suppression."""

    # level | seasonal | discord, or several joined by "+" (the most surprised counts), or
    # both (level and seasonal, the nearer counts)
    predictor: str = "level"
    length: int = 12  # rows of a discord's window
    horizon: int = 4032  # rows of past a discord's window is matched against
    alpha: float = 0.1  # EWMA weight of the level's newest value
    error_alpha: float = 0.01  # EWMA weight of the newest absolute error (the error's scale)
    history: int = 2000  # rows of raw scores the Gaussian is fitted to
    short: int = 10  # rows averaged before they are judged against it
    calm: int = 200  # rows damped after a detection
    # In time instead of rows when set (the series' step converts them): what the live
    # cycle, whose buckets are an hour, could use.
    calm_hours: float = 0.0
    history_days: float = 0.0
    horizon_days: float = 0.0
    # Blended with the live detector's score (`seasonal_anomaly_scores` at the live settings):
    # the weight of the live score, or -1 for the higher of the two.
    blend_live: float = 0.0
    in_time: bool = False  # row-counted settings read as 5-minute rows (`_in_time`)
    # A second, longer average of the raw scores judged the same way (the higher score
    # counts): a sustained rise whose rows each surprise little. 0: none.
    long_short: int = 0
    level_decades: float = 5.0  # the score is 0.5 at Q = 10 ** -level_decades
    drops: bool = False

    def describe(self) -> str:
        default = Likelihood()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        return ", ".join(changed) or "the defaults"


def _level_error(logged: np.ndarray, alpha: float) -> np.ndarray:
    """The newest value minus the EWMA of the values before it (NaN where none yet)."""
    level = pd.Series(logged).ewm(alpha=alpha, ignore_na=True).mean().shift(1).to_numpy()
    error: np.ndarray = logged - level
    return error


def _seasonal_error(logged: np.ndarray, period: int) -> np.ndarray:
    """The live detector's residual (same time of day over the past week), in its spreads."""
    z: np.ndarray = _robust_z(logged, period=period, smoothing=1, settings=SeasonalSettings())
    return z


def _discord_distance(logged: np.ndarray, *, length: int, horizon: int, drops: bool) -> np.ndarray:
    """Distance of the last `length` values to their nearest match among the earlier windows
    of the last `horizon` rows (a left matrix profile, not z-normalised: the level counts).

    Rises only (without `drops`): only how far the window stands above a past one counts, so
    a window lower than some past one is no novelty. NaN before `length` rows of past.
    """
    memo_key = (hashlib.sha256(logged.tobytes()).hexdigest(), length, horizon, drops)
    if memo_key in _DISCORDS:
        return _DISCORDS[memo_key]
    values = np.nan_to_num(logged, nan=0.0)
    size = len(values)
    best = np.full(size, np.inf)
    for lag in range(length, min(horizon, size)):
        difference = values[lag:] - values[:-lag]
        if not drops:
            difference = np.maximum(difference, 0.0)
        summed = np.cumsum(difference * difference)
        window = summed[length - 1 :].copy()
        window[1:] -= summed[:-length]
        # window[k] is the distance of the window ending at lag + k + length - 1.
        ends = slice(lag + length - 1, size)
        best[ends] = np.minimum(best[ends], window)
    distance: np.ndarray = np.where(np.isinf(best), np.nan, np.sqrt(np.maximum(best, 0.0)))
    _DISCORDS[memo_key] = distance
    return distance


def raw_scores(values: Sequence[float], period: int, candidate: Likelihood) -> np.ndarray:
    """The predictor's error in units of its running mean absolute error, squashed to [0, 1)."""
    logged = signed_log(values)
    nearer_of_two = candidate.predictor == "both"
    parts = ("level", "seasonal") if nearer_of_two else tuple(candidate.predictor.split("+"))
    errors = []
    for part in parts:
        if part == "level":
            errors.append(_level_error(logged, candidate.alpha))
        elif part == "seasonal":
            errors.append(_seasonal_error(logged, period))
        elif part == "discord":
            errors.append(
                _discord_distance(
                    logged,
                    length=candidate.length,
                    horizon=candidate.horizon,
                    drops=candidate.drops,
                )
            )
        else:
            raise ValueError(f"unknown predictor {part!r}")
    scaled = []
    for error in errors:
        scale = (
            pd.Series(np.abs(error))
            .ewm(alpha=candidate.error_alpha, ignore_na=True)
            .mean()
            .shift(1)
            .to_numpy()
        )
        with np.errstate(all="ignore"):
            scaled.append(error / (scale + 1e-3))
    stacked = np.vstack(scaled)
    if candidate.predictor == "both":
        # The nearer prediction: a value is surprising only when both models are surprised.
        nearer = np.where(np.abs(stacked[0]) <= np.abs(stacked[1]), stacked[0], stacked[1])
        agreed = np.where(np.sign(stacked[0]) == np.sign(stacked[1]), nearer, 0.0)
        ratio = np.where(np.isnan(stacked[1]), stacked[0], agreed)
    elif len(stacked) > 1:
        # Any model surprised: a novel shape, a jump from the level, an unusual time of day.
        ratio = np.fmax.reduce(stacked, axis=0)
    else:
        ratio = stacked[0]
    if not candidate.drops:
        ratio = np.maximum(ratio, 0.0)
    raw: np.ndarray = np.tanh(np.abs(ratio) / 3.0)
    return raw


def _log_tail(z: np.ndarray) -> np.ndarray:
    """log Q(z), the Gaussian upper tail, without underflow for large z."""
    erfc = np.frompyfunc(math.erfc, 1, 1)
    moderate = np.minimum(z, 8.0)
    with np.errstate(all="ignore"):
        direct = np.log(0.5 * erfc(moderate / math.sqrt(2.0)).astype(float))
        asymptotic = -0.5 * z * z - np.log(z * math.sqrt(2.0 * math.pi))
    result: np.ndarray = np.where(z > 8.0, asymptotic, direct)
    return result


def likelihood_scores(raw: np.ndarray, candidate: Likelihood) -> np.ndarray:
    """Ahmad et al.'s anomaly likelihood of `raw`, log-scaled into [0, 1], causally (the
    higher of the `short` and `long_short` averages), damped after each detection."""
    score = _likelihood(raw, candidate, candidate.short)
    if candidate.long_short > 0:
        score = np.fmax(score, _likelihood(raw, candidate, candidate.long_short))
    return _damped(score, candidate.calm)


def _likelihood(raw: np.ndarray, candidate: Likelihood, short: int) -> np.ndarray:
    # As in the paper, the Gaussian is fitted to the averaged scores themselves.
    averaged = pd.Series(raw).rolling(short, min_periods=1).mean()
    learning = min(candidate.history, 300)
    past = averaged.shift(1).rolling(candidate.history, min_periods=learning)
    mean = past.mean().to_numpy()
    std = past.std().to_numpy()
    learned = ~np.isnan(mean)  # before the floors, which would stand in for no history
    # Floors as in the paper's lower-bound check: a flat history must not make noise a burst.
    mean = np.fmax(mean, 0.03)
    std = np.fmax(np.nan_to_num(std, nan=0.0), math.sqrt(0.0003))
    z = (averaged.to_numpy() - mean) / std
    log_q = _log_tail(np.nan_to_num(z, nan=-10.0))
    # Decades of rarity over `level_decades`, squashed as x / (1 + x): 0.5 at the level and
    # no ceiling that would tie the strongest detections (NAB sweeps the threshold).
    ratio = np.maximum(log_q / (candidate.level_decades * math.log(0.1)), 0.0)
    score = ratio / (1.0 + ratio)
    result: np.ndarray = np.where(learned & ~np.isnan(z), score, 0.0)
    return result


def _damped(score: np.ndarray, calm: int) -> np.ndarray:
    """Every score in the `calm` rows after a detection (>= 0.5 outside such rows) damped by
    10: one event, one detection, as NAB rewards only the first in a window."""
    if calm <= 0:
        return score
    damped = np.zeros(len(score), dtype=bool)
    until = -1
    for index in np.flatnonzero(score >= 0.5).tolist():
        if index > until:
            until = index + calm
            damped[index + 1 : until + 1] = True
    out: np.ndarray = np.where(damped, score * 0.1, score)
    return out


def scores_of(series: NabSeries, candidate: Likelihood) -> np.ndarray:
    if candidate.in_time:
        candidate = _in_time(candidate, series.step)
    hours = series.step / timedelta(hours=1)
    if candidate.calm_hours > 0:
        candidate = replace(candidate, calm=max(1, math.ceil(candidate.calm_hours / hours)))
    if candidate.history_days > 0:
        rows = max(10, math.ceil(24 * candidate.history_days / hours))
        candidate = replace(candidate, history=rows)
    if candidate.horizon_days > 0:
        rows = max(candidate.length + 1, math.ceil(24 * candidate.horizon_days / hours))
        candidate = replace(candidate, horizon=rows)
    raw = raw_scores(series.values, series.period, candidate)
    scores = likelihood_scores(raw, candidate)
    if candidate.blend_live == 0:
        return scores
    live = _scores(series, Candidate(), LIVE_CACHE)
    if candidate.blend_live < 0:
        blended: np.ndarray = np.fmax(scores, live)
    else:
        blended = (1.0 - candidate.blend_live) * scores + candidate.blend_live * live
    return blended


DISCORD = Likelihood(
    predictor="discord",
    length=6,
    error_alpha=0.001,
    calm_hours=16.0,
    history_days=14.0,
    level_decades=4.0,
)

# What every fold of the blend grid chose.
CHOSEN = replace(DISCORD, predictor="discord+level", horizon_days=56.0)

# What every fold of the spans grid chose.
WITH_LONG_AVERAGE = replace(CHOSEN, in_time=True, long_short=36)

GRIDS: dict[str, list[Likelihood]] = {
    "first": [
        Likelihood(),
        Likelihood(alpha=0.3),
        Likelihood(history=8640),
        Likelihood(short=5),
        Likelihood(calm=0),
        Likelihood(level_decades=4.0),
        Likelihood(predictor="seasonal"),
        Likelihood(predictor="seasonal", history=8640),
        Likelihood(predictor="both"),
        Likelihood(predictor="both", alpha=0.3),
        Likelihood(error_alpha=0.001),
        Likelihood(calm=600),
    ],
    # Around the first grid's best (level predictor; lower level, shorter average, longer
    # error memory): chosen after reading the first grid's held-out figures.
    "second": [
        Likelihood(level_decades=decades, short=short, error_alpha=error_alpha)
        for decades in (3.0, 3.5, 4.0)
        for short in (5, 10)
        for error_alpha in (0.01, 0.001)
    ],
    # A pattern memory instead of a level: the window's distance to its nearest past match.
    "discord": [
        Likelihood(predictor="discord", level_decades=4.0),
        Likelihood(predictor="discord", level_decades=4.0, error_alpha=0.001),
        Likelihood(predictor="discord", level_decades=3.0),
        Likelihood(predictor="discord", level_decades=4.0, length=6),
        Likelihood(predictor="discord", level_decades=4.0, length=24),
        Likelihood(predictor="discord", level_decades=4.0, length=48),
        Likelihood(predictor="discord", level_decades=4.0, short=1),
        Likelihood(predictor="discord", level_decades=4.0, horizon=1000),
        Likelihood(predictor="discord+level", level_decades=4.0),
        Likelihood(predictor="discord+level", level_decades=4.0, error_alpha=0.001),
        Likelihood(predictor="discord+level", level_decades=4.0, length=24),
        Likelihood(level_decades=4.0),
    ],
    # The windows in time rather than rows (NAB's hourly series had 8 days of suppression).
    "time": [
        Likelihood(
            level_decades=4.0,
            calm_hours=calm,
            history_days=days,
            predictor=predictor,
            length=6,
            error_alpha=0.001,
        )
        for predictor in ("level", "discord")
        for calm in (6.0, 16.0, 48.0)
        for days in (7.0, 14.0)
    ],
    # Around the time grid's choice (discord of 6 rows, 16 h calm, 14 days of likelihood).
    "discord2": [
        replace(DISCORD, **changes)  # type: ignore[arg-type]
        for changes in (
            {},
            {"short": 5},
            {"short": 20},
            {"length": 3},
            {"length": 9},
            {"horizon": 2016},
            {"horizon": 8064},
            {"error_alpha": 0.0003},
            {"calm_hours": 24.0},
            {"history_days": 28.0},
            {"level_decades": 4.5},
            {"predictor": "discord+level"},
        )
    ],
    # A longer pattern memory (in days), the shape's length, with or without the level.
    "memory": [
        replace(DISCORD, predictor=predictor, length=length, horizon_days=days)
        for predictor in ("discord", "discord+level")
        for length in (3, 6)
        for days in (14.0, 28.0, 56.0)
    ],
    # The memory grid's choice alone, blended with the live detector, or beside a seasonal
    # model instead of the level.
    "blend": [
        replace(DISCORD, **changes)  # type: ignore[arg-type]
        for changes in (
            {"predictor": "discord+level", "horizon_days": 56.0},
            {"predictor": "discord+level", "horizon_days": 56.0, "blend_live": 0.3},
            {"predictor": "discord+level", "horizon_days": 56.0, "blend_live": 0.5},
            {"predictor": "discord+level", "horizon_days": 56.0, "blend_live": -1.0},
            {"predictor": "discord", "horizon_days": 56.0, "blend_live": 0.5},
            {"predictor": "discord+seasonal", "horizon_days": 56.0},
            {"predictor": "discord+seasonal", "horizon_days": 56.0, "blend_live": 0.5},
            {"predictor": "level", "horizon_days": 56.0, "blend_live": 0.5},
        )
    ],
    # The blend grid's choice with its row settings in time (what hourly live buckets need),
    # and as the higher of it and the live score (the live score catches slow burns).
    "units": [
        CHOSEN,
        replace(CHOSEN, in_time=True),
        replace(CHOSEN, blend_live=-1.0),
        replace(CHOSEN, in_time=True, blend_live=-1.0),
    ],
    # The units grid's choice in time, with a longer average beside the short one (as the
    # live detector's mean of six hours beside the last one).
    "spans": [
        replace(CHOSEN, in_time=True, **changes)  # type: ignore[arg-type]
        for changes in (
            {},
            {"long_short": 36},
            {"long_short": 72},
            {"long_short": 144},
            {"long_short": 72, "calm_hours": 6.0},
            {"long_short": 72, "level_decades": 4.5},
        )
    ],
    # The time of day as a third model (the live detector's residual): a rise at night that
    # stays below the day's peaks is no novelty to the discord, nor a jump to the level.
    "seasonal": [
        replace(WITH_LONG_AVERAGE, predictor=predictor, long_short=long_short)
        for predictor in ("discord+level", "discord+level+seasonal", "discord+seasonal")
        for long_short in (36, 72)
    ],
}


def _in_time(candidate: Likelihood, step: timedelta) -> Likelihood:
    """`candidate` with its row-counted settings, meant for 5-minute rows, converted to rows
    of `step` (the same minutes of averaging, of shape, the same memory in time)."""
    rows = step / timedelta(minutes=5)
    return replace(
        candidate,
        short=max(1, round(candidate.short / rows)),
        long_short=max(1, round(candidate.long_short / rows)) if candidate.long_short else 0,
        length=max(1, round(candidate.length / rows)),
        alpha=1.0 - (1.0 - candidate.alpha) ** rows,
        error_alpha=1.0 - (1.0 - candidate.error_alpha) ** rows,
        in_time=False,
    )


def _hourly(candidate: Likelihood) -> Likelihood:
    return _in_time(candidate, timedelta(hours=1))


def scenario_check(seeds: int) -> None:
    """Volume alone on the synthetic scenarios (4 weeks of hourly counts, the last one judged):
    the first score >= 0.5 after the onset and the scores >= 0.5 before it (or anywhere in the
    last week without a crisis), for the live detector and the chosen candidate. Not the alert
    lifecycle (no tone, no coverage): what the volume score alone would do."""
    from tasks.detect.simulation import scenarios
    from tasks.detect.volume import seasonal_anomaly_scores, volume_settings
    from vigie.settings import Detection

    hour = timedelta(hours=1)
    live_settings = volume_settings(Detection(), bucket=hour)

    def live(counts: Sequence[float]) -> np.ndarray:
        return np.asarray(seasonal_anomaly_scores(counts, period=24, settings=live_settings))

    def chosen(counts: Sequence[float]) -> np.ndarray:
        return _series_scores(counts, CHOSEN)

    def chosen_in_hours(counts: Sequence[float]) -> np.ndarray:
        return _series_scores(counts, _hourly(CHOSEN))

    def with_long_average(counts: Sequence[float]) -> np.ndarray:
        return _series_scores(counts, WITH_LONG_AVERAGE)

    def with_time_of_day(counts: Sequence[float]) -> np.ndarray:
        return _series_scores(
            counts, replace(WITH_LONG_AVERAGE, predictor="discord+level+seasonal")
        )

    detectors: dict[str, Callable[[Sequence[float]], np.ndarray]] = {
        "live": live,
        "chosen, rows as on NAB": chosen,
        "chosen, rows in hours": chosen_in_hours,
        "chosen in time, with a 3-hour average": with_long_average,
        "the same with the time of day as a third model": with_time_of_day,
    }
    for name, detector in detectors.items():
        caught: dict[str, list[int | None]] = {}
        false: dict[str, int] = {}
        for seed in range(1, seeds + 1):
            for scenario in scenarios(seed):
                counts = [
                    math.nan if scenario.coverage and scenario.coverage[h] == 0 else float(c)
                    for h, c in enumerate(scenario.counts)
                ]
                scores = detector(counts)
                judged = len(counts) - 7 * 24
                onset = scenario.onset if scenario.onset is not None else len(counts)
                hits = [h for h in range(judged, len(counts)) if scores[h] >= 0.5]
                false[scenario.name] = false.get(scenario.name, 0) + sum(h < onset for h in hits)
                if scenario.onset is not None:
                    after = [h - onset for h in hits if h >= onset]
                    caught.setdefault(scenario.name, []).append(after[0] if after else None)
        print(f"{name}:")
        for scenario_name, count in false.items():
            delays = caught.get(scenario_name)
            shown = ""
            if delays is not None:
                found = [d for d in delays if d is not None]
                within = sum(d + 1 <= (1 if scenario_name == "viral" else 12) for d in found)
                median = statistics.median(found) + 1 if found else math.nan
                shown = f" caught {within}/{len(delays)} in target, median hour {median:.0f}"
            print(f"  {scenario_name:<18} false {count:>3}{shown}")


def _series_scores(counts: Sequence[float], candidate: Likelihood) -> np.ndarray:
    series = NabSeries("scenario", [], list(counts), 24, timedelta(hours=1))
    return scores_of(series, candidate)


def report(
    scorer: FastScorer,
    series: Sequence[NabSeries],
    grid: Sequence[Likelihood],
    outputs: Sequence[Mapping[str, np.ndarray]],
    bench: Path,
    *,
    per_candidate: bool,
) -> None:
    keys = [s.key for s in series]
    tweets = [k for k in keys if k.startswith("realTweets/")]
    categories = sorted({s.category for s in series})
    by_category = [
        ([k for k in keys if not k.startswith(c + "/")], [k for k in keys if k.startswith(c + "/")])
        for c in categories
    ]
    tweet_folds = [([k for k in keys if k != t], [t]) for t in tweets]
    held_out, chosen = cross_validate(scorer, outputs, by_category)
    tweets_held_out, tweets_chosen = cross_validate(scorer, outputs, tweet_folds)
    in_sample = choose(scorer, outputs, keys)
    print("Chosen on the training folds (standard profile at 0.5):")
    for testing, best in chosen + tweets_chosen:
        print(
            f"  without {Path(testing[0]).parent.name + '/' if len(testing) > 1 else testing[0]}"
            f": {grid[best].describe()}"
        )
    print(f"  in-sample: {grid[in_sample].describe()}")
    print()
    print(header())
    print(row("NAB 53 held-out (leave category out)", figures(scorer, held_out, keys)))
    print(row("NAB 53 in-sample", figures(scorer, outputs[in_sample], keys)))
    print(row("tweets held-out (LOSO on 52)", figures(scorer, tweets_held_out, tweets)))
    if per_candidate:
        print()
        print("Each candidate on all 53 / on the tweets (in-sample, for reading only):")
        for candidate, output in zip(grid, outputs, strict=True):
            print(row(candidate.describe()[:34], figures(scorer, output, keys)))
            print(row("  tweets", figures(scorer, output, tweets)))
    print()
    refs = {name: reference_scores(bench, name, series) for name in REFERENCES}
    for name, scores in refs.items():
        print(row(name, figures(scorer, scores, keys)))
        print(row("  tweets", figures(scorer, scores, tweets)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", default=str(DEFAULT_BENCH))
    parser.add_argument("--grid", default="first", choices=sorted(GRIDS))
    parser.add_argument("--drops", action="store_true", help="score falls as well as rises")
    parser.add_argument("--per-candidate", action="store_true")
    parser.add_argument("--cache", default="", help="a folder keeping the live detector's scores")
    parser.add_argument(
        "--scenarios", type=int, default=0, help="check the chosen candidate on N seeds"
    )
    args = parser.parse_args()
    if args.scenarios:
        scenario_check(args.scenarios)
        return
    global LIVE_CACHE
    LIVE_CACHE = Path(args.cache) if args.cache else None
    bench = Path(args.nab)
    series, nab_score = load(bench)
    profiles = nab_score.load_profiles(str(bench / "nab_public/config/profiles.json"))
    scorer = FastScorer(series, profiles)
    grid = GRIDS[args.grid]
    if args.drops:
        grid = [Likelihood(**{**c.__dict__, "drops": True}) for c in grid]
    started = time.perf_counter()
    outputs = [{s.key: scores_of(s, c) for s in series} for c in grid]
    print(f"{len(grid)} candidates scored in {time.perf_counter() - started:.1f} s")
    report(scorer, series, grid, outputs, bench, per_candidate=args.per_candidate)


if __name__ == "__main__":
    main()
