"""Wall time of `t2v generate` with two or more models, interleaved in one run, as ratios to the first.

    python benchmarks/generation_speed.py --models t2v/default_model OTHER [--seconds 60] [--rounds 2]

Each round runs `t2v generate PROMPT --seconds S --model M` once per model, in turn, in a fresh
process (loading included, as a user sees it), so that the machine's drift over the run falls on
every model alike. Prints a Markdown table: the median wall time of each model relative to the
first's, and its real-time factor (seconds of video per second of wall time) in this run. Weights do
not change the cost, so a freshly initialised model measures a layout before it is trained.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from t2v.benchmark_utils import describe_run

PROMPT = "a yellow triangle moves in a circle"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="model folders; the first is the reference")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for model in args.models:
        if not (Path(model) / "model_index.json").is_file():
            parser.error(f"{model} is not a model folder (no model_index.json).")
    times = {model: [] for model in args.models}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for model in args.models:
                command = ["t2v", "generate", PROMPT, "--seconds", str(args.seconds), "--model", model, "--seed", "0",
                           "-o", str(Path(tmp) / "video.mp4")]
                start = time.perf_counter()
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[model].append(time.perf_counter() - start)
    describe_run()
    print(f"{args.rounds} rounds of a {args.seconds:g}-s video, prompt {PROMPT!r}\n")
    print("| model | wall time, relative | real-time factor |")
    print("| --- | --- | --- |")
    reference = statistics.median(times[args.models[0]])
    for model in args.models:
        median = statistics.median(times[model])
        print(f"| {model} | {median / reference:.2f} | {args.seconds / median:.2f} |")


if __name__ == "__main__":
    main()
