"""What the Shapes recipe would reach with more compute: power laws fitted to scored runs, extrapolated.

    python research/scaling_estimate.py research/scores/4x-w192-p4.json runs/study/full [--times 10 100] [--seconds-per-step S]

Reads the scores of one or more runs of one design (`research/scaling_study.py score`: ShapesBench of the To2V
denoiser at several marks of training), each a run folder with its scores.json or a scores file such as
research/scores/4x-w192-p4.json (a study run kept as its table), and fits, for each measure, a power law in the
training steps: the shortfall of an accuracy (1 - accuracy) and the jumps a minute as a * steps^-b, by least
squares on their logarithms. Steps, not minutes, because runs of the same design on different days ran at
different speeds (one step is the same compute on any day); hours are steps times the fastest seconds a step
a run records (or `--seconds-per-step`). It prints the fit, the measure at `--times` times the largest step
count scored, and the hours at which the fit meets the goal (ShapesBench's goals). A straight line in log-log through a
handful of noisy points: read the estimates as an order of magnitude (the kind of estimate of Kaplan et
al., "Scaling Laws for Neural Language Models", 2020, without their range of scales).
"""

import argparse
import json
import math
from pathlib import Path

# (measure, goal, whether higher is better); the accuracies' goals are ShapesBench's, jumps at most 3 a minute.
MEASURES = (("color_accuracy", 0.95, True), ("shape_accuracy", 0.90, True), ("motion_accuracy", 0.85, True),
            ("identity_consistency", 0.95, True), ("jumps_per_minute", 3.0, False))


def power_law(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(a, b) of y = a * x^-b fitted by least squares to log y against log x."""
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return math.exp(my - slope * mx), -slope


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders with a scores.json (research/scaling_study.py score), or scores files")
    parser.add_argument("--times", type=float, nargs="+", default=[10, 100], help="multiples of the largest step count to estimate at")
    parser.add_argument("--seconds-per-step", type=float, default=None,
                        help="to turn steps into hours (default: the fastest seconds_per_step the runs record)")
    args = parser.parse_args()

    rows, speeds = [], []
    for run in args.runs:
        path = Path(run) / "scores.json" if Path(run).is_dir() else Path(run)
        record = json.loads(path.read_text())
        rows += [(float(row["step"]), row) for row in record["scores"].values() if row.get("step", 0) > 0]
        speeds += [record["seconds_per_step"]] if record.get("seconds_per_step") else []
    if len({step for step, _ in rows}) < 2:
        parser.error("the runs have fewer than two different step counts scored; a power law needs two")
    per_step = args.seconds_per_step or (min(speeds) if speeds else None)
    if per_step is None:
        parser.error("no run records its seconds_per_step; give --seconds-per-step to turn steps into hours")
    hours = lambda steps: steps * per_step / 3600  # noqa: E731
    largest = max(step for step, _ in rows)
    print(f"{len(rows)} scored marks from {min(s for s, _ in rows):.0f} to {largest:.0f} steps; hours at {per_step:.3f} s a step")
    header = ["measure", "a", "b", f"at {largest:.0f} steps (fit)"] + [f"x{t:g} ({hours(t * largest):.1f} h)" for t in args.times]
    print("| " + " | ".join(header + ["goal", "hours to the goal"]) + " |")
    print("|" + " --- |" * (len(header) + 2))
    for name, goal, higher in MEASURES:
        points = [(step, (1 - row[name]) if higher else row[name]) for step, row in rows]
        points = [(step, max(y, 1e-3)) for step, y in points]  # a perfect score would be log(0)
        a, b = power_law(points)
        value = (lambda x: 1 - a * x ** -b) if higher else (lambda x: a * x ** -b)
        shortfall = (1 - goal) if higher else goal
        to_goal = (a / shortfall) ** (1 / b) if b > 0 else math.inf
        cells = [name, f"{a:.3g}", f"{b:.3f}", f"{value(largest):.3f}"] + [f"{value(t * largest):.3f}" for t in args.times]
        cells += [f"{goal:g}", "no gain with steps" if to_goal == math.inf else "over 10^4" if hours(to_goal) > 1e4 else f"{hours(to_goal):.1f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
