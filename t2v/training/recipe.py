"""The end of a recipe (training/recipes/*/run.sh): the finished model, and a record of how it was made.

Reads each stage's `metrics.jsonl` and `<stage>.seconds`, writes `OUT/recipe.json` (command, commit,
date, seconds and last loss per stage) and `OUT/model`, the last stage's model with a `trained_on`
line that `t2v info` prints: what data, which command, which commit. With `--sampling_shift` the
exported scheduler samples at that shift; the stages themselves draw their training noise levels
at the shift of their own model's scheduler, which this leaves alone.
"""

import datetime
import json
import subprocess
import time
from pathlib import Path

from ..checks import OneLineParser
from .common import load_base

STAGES = ("data", "init", "vae", "vae_video", "latents", "to2v", "codec", "planner", "refine", "decoder")  # the recipes' stages, in order


def commit() -> str:
    """The checkout's commit (with '+changes' when the tree differs from it), or 'unknown'."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def duration(seconds: float) -> str:
    """A stage total as people say it: minutes up to two hours, then hours."""
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def last_loss(stage_dir: Path, window: int = 50) -> float | None:
    """Mean loss of the last `window` optimizer steps in a stage's metrics.jsonl."""
    path = stage_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    losses = [json.loads(line)["loss"] for line in path.read_text().splitlines() if line.strip()]
    return sum(losses[-window:]) / len(losses[-window:]) if losses else None


def main(argv=None):
    parser = OneLineParser(description="Finish a recipe: OUT/model and OUT/recipe.json.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--command", required=True, help="the command that ran the recipe, for the record")
    parser.add_argument("--data", default="OUT/data/train", help="what the data is, for the model's trained_on line")
    parser.add_argument("--data_dir", default=None, help="the video folder trained on, to count its videos (default: OUT/data/train)")
    parser.add_argument("--started", type=float, default=None, help="unix time the recipe started")
    parser.add_argument("--last_stage", default=None,
                        help="the stage whose model is the recipe's (default: the last of STAGES with OUT/<stage>/model)")
    parser.add_argument("--sampling_shift", type=float, default=None,
                        help="the flow-matching shift the exported model samples at (default: the last stage's, the training shift)")
    args = parser.parse_args(argv)
    if args.sampling_shift is not None and args.sampling_shift <= 0:
        parser.error(f"--sampling_shift must be positive, not {args.sampling_shift:g}")

    out = Path(args.out)
    if args.last_stage is None:
        made = [name for name in STAGES if (out / name / "model" / "model_index.json").is_file()]
        if not made:
            parser.error(f"no stage of {out} has a model (OUT/<stage>/model) to finish the recipe with")
        args.last_stage = made[-1]
    stages = {}
    for name in STAGES:  # those this recipe has: a time or a folder of their own
        seconds = out / f"{name}.seconds"
        if not (seconds.is_file() or (out / name).is_dir()):
            continue
        stages[name] = {
            "seconds": int(seconds.read_text()) if seconds.is_file() else None,
            "final_loss": last_loss(out / name),
        }
    total = sum(s["seconds"] or 0 for s in stages.values())
    record = {
        "command": args.command,
        "commit": commit(),
        "date": datetime.date.today().isoformat(),
        "total_seconds": total,
        "wall_seconds": None if args.started is None else int(time.time() - args.started),
        "stages": stages,
    }
    pipe = load_base(str(out / args.last_stage / "model"))
    if args.sampling_shift is not None:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, shift=args.sampling_shift)
    record["sampling_shift"] = pipe.scheduler.config.get("shift")
    metadata = Path(args.data_dir or out / "data" / "train") / "metadata.jsonl"
    videos = sum(1 for line in metadata.read_text().splitlines() if line.strip()) if metadata.is_file() else "?"
    line = (f"{args.data}: {videos} videos; trained by `{args.command}` at commit {record['commit']}, {record['date']}, "
            f"{duration(total)} of training")
    pipe.export(out / "model", line)
    (out / "recipe.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out / 'model'} and {out / 'recipe.json'} ({total / 60:.1f} min of stages)")
    print(line)


if __name__ == "__main__":
    main()
