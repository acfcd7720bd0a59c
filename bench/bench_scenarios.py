"""Benchmark: alert quality at live settings, on the synthetic crisis scenarios and on the calm
stretches of the real tweet series.

Synthetic scenarios (tasks/detect/simulation.py), 30 random seeds each, replayed hour by hour
through `assess_topic` and the alert lifecycle exactly as the watch cycle runs them: how many seeds
alert within the target delay (viral: its first hour; slow burn: its first 12 hours), the
median delay, and the false alerts (scenarios without a crisis, or alerts before the onset);
then the same for breaking-story alerts, with two scenarios of their own
(tasks/detect/breaking_simulation.py).

Real tweet series (NAB realTweets dev, 5-minute counts summed into the live hourly windows):
the volume detector at live settings with the alert lifecycle (`calm_minutes`), alerts opened
outside the labelled windows per week of such calm time. Volume alone cannot open an alert
live (it needs a worrying tone or crisis words too), so this is an upper bound.

    python bench/bench_scenarios.py [--seeds 30] [--nab ../shared/bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import vigie  # noqa: F401  (telemetry off)
from tasks.detect.breaking_simulation import replay_stories, story_scenarios
from tasks.detect.series import read_series
from tasks.detect.simulation import replay, scenarios
from tasks.detect.volume import seasonal_anomaly_scores, volume_settings
from vigie.settings import Detection

DEFAULT_BENCH = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench"
TARGET_HOURS = {"viral": 1, "slow-burn": 12, "major-pickup": 12}


def synthetic(seeds: int) -> None:
    print(f"Synthetic scenarios (hourly windows, live settings, last week of four, {seeds} seeds)")
    print(
        f"  {'scenario':<18} {'caught in target':>17} {'median delay':>13} {'missed':>7}"
        f" {'false alerts':>13}"
    )
    by_name: dict[str, list[tuple[int | None, int]]] = {}
    onsets: dict[str, bool] = {}
    for seed in range(1, seeds + 1):
        for scenario in scenarios(seed):
            result = replay(scenario)
            onsets[scenario.name] = scenario.onset is not None
            if scenario.onset is None:
                delay, false = None, len(result.alerts)
            else:
                first = result.first_alert_after(scenario.onset)
                delay = None if first is None else first - scenario.onset
                false = sum(1 for h in result.alerts if h < scenario.onset)
            by_name.setdefault(scenario.name, []).append((delay, false))
    for name, runs in by_name.items():
        false = sum(f for _, f in runs)
        if not onsets[name]:
            print(f"  {name:<18} {'no crisis':>17} {'-':>13} {'-':>7} {false:>13}")
            continue
        delays = [d for d, _ in runs if d is not None]
        target = TARGET_HOURS.get(name, 12)
        # Delay 0: the alert opens at the end of the crisis's first hour.
        caught = sum(1 for d in delays if d + 1 <= target)
        median = f"hour {statistics.median(delays) + 1:.0f}" if delays else "-"
        missed = len(runs) - len(delays)
        print(
            f"  {name:<18} {f'{caught}/{len(runs)} <= {target} h':>17} {median:>13}"
            f" {missed:>4}/{len(runs)} {false:>13}"
        )


def breaking_stories(seeds: int) -> None:
    """Story alerts (tasks/detect/breaking.py) on every scenario and on the two of their own; for
    those two, what the volume detector alone does."""
    print()
    print(f"Breaking stories (story alerts, live settings, last week of four, {seeds} seeds)")
    print(
        f"  {'scenario':<20} {'onset -> story alert':>22} {'missed':>7} {'false alerts/week':>18}"
        f" {'volume alone':>13}"
    )
    by_name: dict[str, list[tuple[int | None, int, int | None]]] = {}
    onsets: dict[str, bool] = {}
    for seed in range(1, seeds + 1):
        own = story_scenarios(seed)
        for scenario in [*scenarios(seed), *own]:
            result = replay_stories(scenario)
            volume = replay(scenario).alerts if scenario in own else None
            onsets[scenario.name] = scenario.onset is not None
            if scenario.onset is None:
                delay, false = None, len(result.alerts)
                by_volume = None if volume is None else len(volume)
            else:
                first = result.first_alert_after(scenario.onset)
                delay = None if first is None else first - scenario.onset
                false = sum(1 for h in result.alerts if h < scenario.onset)
                caught = (
                    None
                    if volume is None
                    else next((h for h in volume if h >= scenario.onset), None)
                )
                by_volume = None if volume is None else int(caught is None)
            by_name.setdefault(scenario.name, []).append((delay, false, by_volume))
    for name, runs in by_name.items():
        delays = [d for d, _, _ in runs if d is not None]
        shown = f"in hour {statistics.median(delays) + 1:.0f}" if delays else "-"
        missed = sum(1 for d, _, _ in runs if d is None) if onsets[name] else 0
        false_per_week = statistics.mean(float(f) for _, f, _ in runs)
        label = shown if onsets[name] else "no crisis"
        volume_runs = [v for _, _, v in runs if v is not None]
        if not volume_runs:
            alone = ""
        elif onsets[name]:
            alone = f"missed {sum(volume_runs)}/{len(volume_runs)}"
        else:
            alone = f"{statistics.mean(volume_runs):.2f} false"
        print(
            f"  {name:<20} {label:>22} {missed:>4}/{len(runs)} {false_per_week:>18.2f} {alone:>13}"
        )


def tweets(bench: Path) -> None:
    root = bench / "nab_realtweets_dev"
    windows = json.loads((root / "labels/combined_windows.json").read_text(encoding="utf-8"))
    detection = Detection()
    hour = timedelta(hours=1)
    settings = volume_settings(detection, bucket=hour)
    print()
    print(
        f"Real tweet series, live settings (hourly windows, threshold {detection.threshold:g},"
        f" alert open until {detection.calm_minutes} min without a trigger)"
    )
    print(f"  {'series':<24} {'calm weeks':>10} {'volume alerts':>14} {'per week':>9}")
    total_alerts, total_weeks = 0, 0.0
    for key in sorted(windows):
        timestamps, values = read_series(root / "data" / key)
        moments = [datetime.fromisoformat(t) for t in timestamps]
        start = moments[0].replace(minute=0, second=0)
        hourly: dict[int, float] = {}
        for moment, value in zip(moments, values, strict=True):
            index = int((moment - start) / hour)
            hourly[index] = hourly.get(index, 0.0) + value
        counts = [hourly.get(i, 0.0) for i in range(max(hourly) + 1)]
        scores = seasonal_anomaly_scores(counts, period=24, settings=settings)
        labelled: set[int] = set()
        for first, last in windows[key]:
            a = int((datetime.fromisoformat(first) - start) / hour)
            b = int((datetime.fromisoformat(last) - start) / hour)
            labelled.update(range(a, b + 1))
        # The first week only builds the baseline: it is judged by nobody.
        calm_hours = [i for i in range(7 * 24, len(counts)) if i not in labelled]
        alerts = sum(1 for i in calm_hours if scores[i] >= 0.5)
        weeks = len(calm_hours) / (7 * 24)
        total_alerts += alerts
        total_weeks += weeks
        name = Path(key).stem.removeprefix("Twitter_volume_")
        print(f"  {name:<24} {weeks:>10.1f} {alerts:>14} {alerts / weeks:>9.2f}")
    print(
        f"  {'all five':<24} {total_weeks:>10.1f} {total_alerts:>14}"
        f" {total_alerts / total_weeks:>9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--nab", default=str(DEFAULT_BENCH))
    args = parser.parse_args()
    synthetic(args.seeds)
    breaking_stories(args.seeds)
    bench = Path(args.nab)
    if (bench / "nab_realtweets_dev").is_dir():
        tweets(bench)
    else:
        print(f"(no real tweet series under {bench}: skipped)")


if __name__ == "__main__":
    main()
