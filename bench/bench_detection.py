"""Benchmark: the volume detector on NAB realTweets (dev series), scored as NAB does.

Runs `vigie detect-series`'s scoring over every series of the data folder, side by side with a
plain median/MAD z-score of the last day (the classic baseline), and prints the three NAB
profiles with the threshold optimised (as NAB does) and at Vigie's fixed threshold 0.5. TP and FP
count rows at 0.5 (as NAB does); `windows` counts the labelled windows with at least one of them.

    python bench/bench_detection.py [--nab ../shared/bench]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import vigie  # noqa: F401  (telemetry off)
from tasks.detect.series import score_series

Detector = Callable[[Sequence[str], Sequence[float]], list[float]]


def median_mad_z(timestamps: Sequence[str], values: Sequence[float]) -> list[float]:
    """The baseline: robust z-score of each bucket against the previous day (288 buckets)."""
    scores = []
    for i, value in enumerate(values):
        past = values[max(0, i - 288) : i]
        if len(past) < 12:
            scores.append(0.0)
            continue
        median = statistics.median(past)
        mad = statistics.median(abs(v - median) for v in past) * 1.4826 + 1.0
        z = (value - median) / mad
        scores.append(1.0 / (1.0 + math.exp(-(z - 4.0))))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", default=str(Path(__file__).resolve().parents[2] / "shared/bench"))
    args = parser.parse_args()
    bench = Path(args.nab)
    sys.path.insert(0, str(bench))
    import nab_score  # the scorer shipped beside the data

    root = bench / "nab_realtweets_dev"
    windows = json.loads((root / "labels/combined_windows.json").read_text(encoding="utf-8"))
    profiles = nab_score.load_profiles(str(root / "config/profiles.json"))
    data = {}
    for key in sorted(windows):
        with (root / "data" / key).open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        data[key] = ([r["timestamp"] for r in rows], [float(r["value"]) for r in rows])

    print(
        f"NAB realTweets dev ({len(data)} series, "
        f"{sum(len(w) for w in windows.values())} windows); normalised scores"
    )
    print(
        f"  {'detector':<28} {'profile':<20} {'optimised':>9} {'(thr)':>7} {'at 0.5':>7}"
        f" {'TP':>3} {'FP':>4} {'windows':>8}"
    )
    detectors: list[tuple[str, Detector]] = [
        ("vigie detect-series", score_series),
        ("naive median/MAD z (1 day)", median_mad_z),
    ]
    for name, detector in detectors:
        started = time.perf_counter()
        series = [
            nab_score.Series(
                key, [nab_score.parse_time(t) for t in ts], detector(ts, values), windows[key]
            )
            for key, (ts, values) in data.items()
        ]
        elapsed = time.perf_counter() - started
        detected = sum(
            1
            for s in series
            for w in s.scored_windows
            if any(
                s.scores[i] >= 0.5 and s.row_window[i] == w for i in range(s.first_scored_row, s.n)
            )
        )
        scored = sum(len(s.scored_windows) for s in series)
        optimised = nab_score.nab_scores(series, profiles)
        fixed = nab_score.nab_scores(
            series, profiles, fixed_thresholds=dict.fromkeys(profiles, 0.5)
        )
        for profile in profiles:
            o, f = optimised[profile], fixed[profile]
            print(
                f"  {name:<28} {profile:<20} {o['normalized']:>9.1f} {o['threshold']:>7.3f}"
                f" {f['normalized']:>7.1f} {f['tp']:>3} {f['fp']:>4} {detected:>5}/{scored}"
            )
        buckets = sum(len(v) for _, v in data.values())
        print(f"  {name:<28} {buckets / elapsed:,.0f} buckets/s")


if __name__ == "__main__":
    main()
