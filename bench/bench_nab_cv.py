"""Benchmark: the volume detector on the 53 public NAB series, chosen by cross-validation.

The design and every setting of the detector are chosen on some series and scored on others,
so no figure comes from the series it was tuned on:
- leave one category out: for each of NAB's seven categories, the candidate with the best
  training score (standard profile at Vigie's fixed threshold 0.5) on the six others scores
  the held-out category; the held-out outputs of all categories are then scored together;
- leave one series out for the five visible realTweets series, each trained on the 52 others
  (and, beside it, trained on the four other tweet series alone).
There is no setting per series: one candidate scores every series of a fold.

Printed side by side: Vigie's held-out and in-sample scores (the three NAB profiles with the
threshold optimised, and the standard profile at 0.5), the scores of the default settings (the
ones that alert live), and the published detectors' scores on the same series (`reference/`).
Figures come from `FastScorer`, a numpy version of NAB's scorer (`nab_score.py`), checked equal
to it on the live settings in each run (NAB's own takes minutes for the grid on 2 cores).

    python bench/bench_nab_cv.py [--nab ../shared/bench] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

import vigie  # noqa: F401  (telemetry off)
from tasks.detect.series import bucket_step, buckets_per_day, read_series
from tasks.detect.volume import SeasonalSettings, seasonal_anomaly_scores, volume_settings
from vigie.settings import Detection

DEFAULT_BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench"
REFERENCES = ("ARTime", "numenta", "contextOSE", "earthgeckoSkyline")
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
FIXED = 0.5


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: `[detection]` settings and the detector's design."""

    threshold: float = Detection().threshold
    calm_minutes: int = Detection().calm_minutes
    spans: tuple[int, ...] = SeasonalSettings().spans
    tail_share: float = SeasonalSettings().tail_share
    cusum_drift: float = SeasonalSettings().cusum_drift
    cusum_limit: float = SeasonalSettings().cusum_limit
    drops: bool = False

    def settings(self, step: timedelta) -> SeasonalSettings:
        detection = Detection(threshold=self.threshold, calm_minutes=self.calm_minutes)
        return replace(
            volume_settings(detection, bucket=step),
            spans=self.spans,
            tail_share=self.tail_share,
            cusum_drift=self.cusum_drift,
            cusum_limit=self.cusum_limit,
            drops=self.drops,
        )

    @property
    def accumulates(self) -> bool:
        return self.cusum_limit > 0

    def describe(self) -> str:
        default = Candidate()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        return ", ".join(changed) or "the live settings"


def candidates(quick: bool) -> list[Candidate]:
    """The small grid the cross-validation chooses from (2 shared cores: at most 12).

    Designs: the last bucket and the mean of six with the adaptive tail threshold (live) or a
    fixed one, and the mean of two buckets with the tail (the former `detect-series`); the
    robust z's threshold; and, on the live design, the accumulated evidence for slow burns
    (`cusum_drift`, `cusum_limit`; off in the others, which are the grid without it).
    """
    thresholds = (3.0,) if quick else (3.0, 4.0)
    accumulations = (
        ((0.0, 0.0), (1.0, 8.0)) if quick else ((0.0, 0.0), (0.5, 4.0), (1.0, 4.0), (1.0, 8.0))
    )
    found = [
        Candidate(threshold=t, cusum_drift=k, cusum_limit=h)
        for t in thresholds
        for k, h in accumulations
    ]
    found += [Candidate(threshold=t, spans=(2,), cusum_limit=0.0) for t in thresholds]
    found += [Candidate(threshold=3.0, tail_share=0.0, cusum_limit=0.0)]
    if not quick:
        found += [Candidate(threshold=3.0, tail_share=0.0, cusum_drift=1.0, cusum_limit=8.0)]
    return found


@dataclass
class NabSeries:
    key: str  # category/file.csv
    timestamps: list[str]
    values: list[float]
    period: int
    step: timedelta
    scored: Any = None  # nab_score.Series (reward table), built once

    @property
    def category(self) -> str:
        return self.key.split("/")[0]


class FastScorer:
    """NAB's score (`nab_score.nab_scores`) in numpy, for many candidates and folds.

    Same arithmetic: rows after the probationary period, each window earning its best
    (earliest) detection, false positives adding up, threshold swept over the scores.
    """

    def __init__(self, series: Sequence[NabSeries], profiles: Mapping[str, Mapping[str, float]]):
        self.profiles = profiles
        self.unit: dict[str, np.ndarray] = {}
        self.window: dict[str, np.ndarray] = {}
        self.first: dict[str, int] = {}
        self.n_windows: dict[str, int] = {}
        for s in series:
            table = s.scored
            self.unit[s.key] = np.asarray(table.row_unit, dtype=float)
            self.window[s.key] = np.asarray(table.row_window, dtype=int)
            self.first[s.key] = table.first_scored_row
            self.n_windows[s.key] = len(table.windows)

    def _rows(
        self, scores: Mapping[str, np.ndarray], keys: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s_parts, w_parts, u_parts = [], [], []
        offset = 0
        for key in keys:
            first = self.first[key]
            window = self.window[key][first:]
            s_parts.append(np.asarray(scores[key], dtype=float)[first:])
            w_parts.append(np.where(window >= 0, window + offset, -1))
            u_parts.append(self.unit[key][first:])
            offset += self.n_windows[key]
        return np.concatenate(s_parts), np.concatenate(w_parts), np.concatenate(u_parts)

    @staticmethod
    def _best(s: np.ndarray, w: np.ndarray, u: np.ndarray, profile: Mapping[str, float]) -> float:
        a_tp, a_fp, a_fn = profile["tpWeight"], profile["fpWeight"], profile["fnWeight"]
        order = np.argsort(-s, kind="stable")
        s, w, u = s[order], w[order], u[order]
        gain = np.where(w < 0, u * a_fp, 0.0)
        ids = np.unique(w[w >= 0])
        for window in ids:
            where = np.flatnonzero(w == window)
            running = np.maximum.accumulate(np.concatenate(([-a_fn], u[where] * a_tp)))
            gain[where] += np.diff(running)
        total = -a_fn * len(ids) + np.cumsum(gain)
        last_of_tie = np.ones(len(s), dtype=bool)
        last_of_tie[:-1] = s[:-1] != s[1:]
        candidates = total[last_of_tie]
        return float(max(-a_fn * len(ids), candidates.max() if len(candidates) else -np.inf))

    def normalised(
        self,
        scores: Mapping[str, np.ndarray],
        keys: Sequence[str],
        profile_name: str,
        threshold: float | None = None,
    ) -> float:
        """Normalised score of `keys`, the threshold optimised (None) or fixed."""
        profile = self.profiles[profile_name]
        s, w, u = self._rows(scores, keys)
        if threshold is None:
            raw = self._best(s, w, u, profile)
        else:
            raw = _fixed_raw(s, w, u, profile, threshold)
        null = self._best(np.full(len(s), 0.5), w, u, profile)
        perfect = profile["tpWeight"] * sum(self.n_windows[k] for k in keys)
        return 100.0 * (raw - null) / (perfect - null)


def _fixed_raw(
    s: np.ndarray, w: np.ndarray, u: np.ndarray, profile: Mapping[str, float], threshold: float
) -> float:
    """Raw score at a fixed threshold (NAB's tolerance: 1e-12 below it still counts)."""
    hit = s >= threshold - 1e-12
    total = float(np.sum(u[hit & (w < 0)]) * profile["fpWeight"])
    for window in np.unique(w[w >= 0]):
        inside = hit & (w == window)
        total += (
            float(u[inside].max() * profile["tpWeight"]) if inside.any() else -profile["fnWeight"]
        )
    return total


def load(bench: Path) -> tuple[list[NabSeries], Any]:
    sys.path.insert(0, str(bench))
    import nab_score  # the scorer shipped beside the data

    root = bench / "nab_public"
    windows = json.loads((root / "labels/combined_windows.json").read_text(encoding="utf-8"))
    found = []
    for key in sorted(windows):
        timestamps, values = read_series(root / "data" / key)
        nab = NabSeries(
            key, timestamps, values, buckets_per_day(timestamps), bucket_step(timestamps)
        )
        moments = [nab_score.parse_time(t) for t in timestamps]
        nab.scored = nab_score.Series(key, moments, [0.0] * len(moments), windows[key])
        found.append(nab)
    return found, nab_score


def reference_scores(bench: Path, name: str, series: Sequence[NabSeries]) -> dict[str, np.ndarray]:
    scores = {}
    for s in series:
        path = bench / "nab_public" / "reference" / name / f"{s.key}.gz"
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        by_time = {r["timestamp"].strip(): float(r["anomaly_score"] or 0.0) for r in rows}
        scores[s.key] = np.array([by_time.get(t.strip(), 0.0) for t in s.timestamps])
    return scores


def official(
    nab_score: Any,
    series: Sequence[NabSeries],
    scores: Mapping[str, Sequence[float] | np.ndarray],
    profiles: Mapping[str, Mapping[str, float]],
) -> dict[str, float]:
    """NAB's own scorer: each profile optimised (its name) and at 0.5 (name@0.5)."""
    scored = []
    for s in series:
        table = s.scored
        table.scores = [float(v) for v in scores[s.key]]
        scored.append(table)
    optimised = nab_score.nab_scores(scored, profiles)
    fixed = nab_score.nab_scores(scored, profiles, fixed_thresholds=dict.fromkeys(profiles, FIXED))
    figures = {p: optimised[p]["normalized"] for p in PROFILES}
    figures.update({f"{p}@0.5": fixed[p]["normalized"] for p in PROFILES})
    return figures


def figures(
    scorer: FastScorer, scores: Mapping[str, np.ndarray], keys: Sequence[str]
) -> dict[str, float]:
    """The figures of one row: each profile optimised and at 0.5, false positives at 0.5."""
    found = {p: scorer.normalised(scores, keys, p) for p in PROFILES}
    found.update({f"{p}@0.5": scorer.normalised(scores, keys, p, FIXED) for p in PROFILES})
    found["fp@0.5"] = float(
        sum(
            np.sum(
                (scores[k][scorer.first[k] :] >= FIXED) & (scorer.window[k][scorer.first[k] :] < 0)
            )
            for k in keys
        )
    )
    return found


def _scores(series: NabSeries, candidate: Candidate, cache: Path | None) -> np.ndarray:
    """The candidate's scores of one series, from `cache` when this code computed them."""
    settings = candidate.settings(series.step)
    path = None
    if cache is not None:
        code = Path(sys.modules[SeasonalSettings.__module__].__file__ or "").read_bytes()
        digest = hashlib.sha256(code + repr((settings, series.key)).encode()).hexdigest()
        path = cache / f"{digest[:32]}.npy"
        if path.exists():
            cached: np.ndarray = np.load(path)
            return cached
    scores = np.asarray(
        seasonal_anomaly_scores(series.values, period=series.period, settings=settings)
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, scores)
    return scores


def choose(
    scorer: FastScorer,
    outputs: Sequence[Mapping[str, np.ndarray]],
    training: Sequence[str],
) -> int:
    """The candidate with the best training score (standard, at the fixed threshold)."""
    results = [scorer.normalised(o, training, "standard", FIXED) for o in outputs]
    return int(np.argmax(results))


def cross_validate(
    scorer: FastScorer,
    outputs: Sequence[Mapping[str, np.ndarray]],
    folds: Iterable[tuple[Sequence[str], Sequence[str]]],
) -> tuple[dict[str, np.ndarray], list[tuple[Sequence[str], int]]]:
    """Out-of-fold scores: each held-out series scored by the candidate its fold chose."""
    held_out: dict[str, np.ndarray] = {}
    chosen = []
    for training, testing in folds:
        best = choose(scorer, outputs, training)
        chosen.append((testing, best))
        for key in testing:
            held_out[key] = outputs[best][key]
    return held_out, chosen


def row(name: str, found: Mapping[str, float]) -> str:
    return (
        f"  {name:<34} {found['standard']:>8.1f} {found['reward_low_FP_rate']:>8.1f}"
        f" {found['reward_low_FN_rate']:>8.1f} {found['standard@0.5']:>9.1f}"
        f" {found['reward_low_FP_rate@0.5']:>8.1f} {found['fp@0.5']:>6.0f}"
    )


def header() -> str:
    return (
        f"  {'detector':<34} {'standard':>8} {'low FP':>8} {'low FN':>8} {'std@0.5':>9}"
        f" {'lowFP@.5':>8} {'FP@.5':>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", default=str(DEFAULT_BENCH))
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument(
        "--cache",
        default="",
        help="a folder keeping each candidate's scores of each series between runs"
        " (keyed by the detector's source, so a change of code computes them again)",
    )
    parser.add_argument(
        "--drops",
        action="store_true",
        help="score falls as well as rises (not what Vigie alerts on: for comparison only)",
    )
    args = parser.parse_args()
    bench = Path(args.nab)
    series, nab_score = load(bench)
    profiles = nab_score.load_profiles(str(bench / "nab_public/config/profiles.json"))
    scorer = FastScorer(series, profiles)
    keys = [s.key for s in series]
    tweets = [k for k in keys if k.startswith("realTweets/")]

    live = Candidate()
    grid = [live, *[c for c in candidates(args.quick) if c != live]]
    if args.drops:
        grid = [replace(c, drops=True) for c in grid]
    started = time.perf_counter()
    cache = Path(args.cache) if args.cache else None
    outputs = [{s.key: _scores(s, c, cache) for s in series} for c in grid]
    elapsed = time.perf_counter() - started
    rows = sum(len(s.values) for s in series)
    print(
        f"NAB public: {len(series)} series, {sum(scorer.n_windows.values())} windows, "
        f"{rows:,} rows; {len(grid)} candidates scored in {elapsed:.1f} s "
        f"({rows * len(grid) / elapsed:,.0f} rows/s)"
    )

    # The fast scorer agrees with NAB's own on the live settings (optimised and fixed).
    check = official(nab_score, series, outputs[0], profiles)
    live_figures = figures(scorer, outputs[0], keys)
    for name, value in check.items():
        assert abs(live_figures[name] - value) < 1e-6, (name, live_figures[name], value)

    categories = sorted({s.category for s in series})
    by_category = [
        ([k for k in keys if not k.startswith(c + "/")], [k for k in keys if k.startswith(c + "/")])
        for c in categories
    ]
    held_out, chosen = cross_validate(scorer, outputs, by_category)
    tweet_folds = [([k for k in keys if k != t], [t]) for t in tweets]
    tweets_held_out, tweets_chosen = cross_validate(scorer, outputs, tweet_folds)
    # The same, trained on the four other tweet series alone (series of the same kind).
    among_tweets = [([k for k in tweets if k != t], [t]) for t in tweets]
    tweets_only_held_out, tweets_only_chosen = cross_validate(scorer, outputs, among_tweets)
    in_sample = choose(scorer, outputs, keys)
    # The same protocol over the grid without the accumulated evidence: what it adds held-out.
    plain = [i for i, c in enumerate(grid) if not c.accumulates]
    plain_outputs = [outputs[i] for i in plain]
    plain_held_out, _ = cross_validate(scorer, plain_outputs, by_category)
    plain_tweets_held_out, _ = cross_validate(scorer, plain_outputs, tweet_folds)
    tweets_in_sample = choose(scorer, outputs, tweets)

    print("Chosen on the training folds (standard profile at 0.5):")
    for testing, best in chosen:
        print(f"  without {testing[0].split('/')[0]:<22} {grid[best].describe()}")
    for testing, best in tweets_chosen:
        print(f"  without {Path(testing[0]).stem:<22} {grid[best].describe()}")
    for testing, best in tweets_only_chosen:
        print(f"  other tweets than {Path(testing[0]).stem[15:]:<12} {grid[best].describe()}")
    print(f"  on all 53 (in-sample)           {grid[in_sample].describe()}")
    print()
    print(f"All {len(series)} public series (normalised NAB scores; optimised unless @0.5)")
    print(header())
    print(row("Vigie held-out (leave category out)", figures(scorer, held_out, keys)))
    print(row("  the same without accumulation", figures(scorer, plain_held_out, keys)))
    print(
        row(
            "Vigie in-sample (best of the grid)",
            figures(scorer, outputs[in_sample], keys),
        )
    )
    print(row("Vigie live settings", live_figures))
    refs = {name: reference_scores(bench, name, series) for name in REFERENCES}
    for name, scores in refs.items():
        print(row(name, figures(scorer, scores, keys)))

    print()
    print(f"The {len(tweets)} visible realTweets series")
    print(header())
    print(
        row(
            "Vigie held-out (leave series out)",
            figures(scorer, tweets_held_out, tweets),
        )
    )
    print(row("  the same without accumulation", figures(scorer, plain_tweets_held_out, tweets)))
    print(
        row("Vigie held-out (LOSO, 4 tweets only)", figures(scorer, tweets_only_held_out, tweets))
    )
    print(
        row(
            "Vigie held-out (leave category out)",
            figures(scorer, held_out, tweets),
        )
    )
    print(
        row(
            "Vigie in-sample (tuned on the five)",
            figures(scorer, outputs[tweets_in_sample], tweets),
        )
    )
    print(row("Vigie live settings", figures(scorer, outputs[0], tweets)))
    for name, scores in refs.items():
        print(row(name, figures(scorer, scores, tweets)))


if __name__ == "__main__":
    main()
