"""Benchmark: detection on the synthetic crisis scenarios (tasks/simulation.py).

For each scenario and five random seeds, prints the median time from onset to the first alert
and the false alerts per simulated week (alerts of scenarios without a crisis, or opened before
the onset); then the same for breaking-story alerts, with two scenarios of their own
(tasks/breaking_simulation.py). Figures only.

    python bench/bench_scenarios.py
"""

from __future__ import annotations

import statistics

import vigie  # noqa: F401  (telemetry off)
from tasks.breaking_simulation import replay_stories, story_scenarios
from tasks.simulation import replay, scenarios

SEEDS = [1, 2, 3, 4, 5]


def main() -> None:
    print("Synthetic scenarios (hourly windows, default settings, last week of four, 5 seeds)")
    print(
        f"  {'scenario':<20} {'onset -> first alert':>22} {'missed':>7} {'false alerts/week':>18}"
    )
    by_name: dict[str, list[tuple[int | None, int]]] = {}
    for seed in SEEDS:
        for scenario in scenarios(seed):
            result = replay(scenario)
            if scenario.onset is None:
                delay, false = None, len(result.alerts)
            else:
                first = result.first_alert_after(scenario.onset)
                delay = None if first is None else first - scenario.onset
                false = sum(1 for h in result.alerts if h < scenario.onset)
            by_name.setdefault(scenario.name, []).append((delay, false))
    for name, runs in by_name.items():
        delays = [d for d, _ in runs if d is not None]
        onset = any(s.onset is not None for s in scenarios(1) if s.name == name)
        # Delay 0: the alert opens at the end of the crisis's first hour.
        shown = f"in hour {statistics.median(delays) + 1:.0f}" if delays else "-"
        missed = sum(1 for d, _ in runs if d is None) if onset else 0
        false_per_week = statistics.mean(float(f) for _, f in runs)
        label = shown if onset else "no crisis"
        print(f"  {name:<20} {label:>22} {missed:>4}/{len(runs)} {false_per_week:>18.2f}")
    breaking_stories()


def breaking_stories() -> None:
    """Story alerts (tasks/breaking.py) on every scenario and on the two of their own; for
    those two, what the volume detector alone does."""
    print()
    print("Breaking stories (story alerts, default settings, last week of four, 5 seeds)")
    print(
        f"  {'scenario':<20} {'onset -> story alert':>22} {'missed':>7} {'false alerts/week':>18}"
        f" {'volume alone':>13}"
    )
    by_name: dict[str, list[tuple[int | None, int, int | None]]] = {}
    onsets: dict[str, bool] = {}
    for seed in SEEDS:
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


if __name__ == "__main__":
    main()
