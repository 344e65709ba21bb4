"""The model card of a Shapes-world model: ShapesBench on pairs it trained on and on held-out pairs, still objects,
and the README's first command, with a strip of that command's frames.

    python benchmarks/shapes_model_card.py --out runs/card [--model DIR] [--seconds 60] [--prompts 5] [--seeds 3]
        [--strip docs/first_command.png]

What `t2v generate` makes (planner + FIFO; a caption with a change given as its storyboard), in three folders
under OUT, each with a metadata.jsonl, so that `t2v eval shapes --videos OUT/<folder>` scores any of them again:

- `training_pairs`: `--prompts` captions whose first color-shape pair the model trained on (prompt seed 0; every
  second one changes color or motion halfway), each with `--seeds` seeds, `--seconds` long.
- `held_out`: the same with the five held-out pairs (`t2v.shapes.evaluate.held_out_prompts`, the ablation's).
- `stays_still`: "a COLOR SHAPE stays still" for four pairs, two of them held out: besides ShapesBench, how far
  the object's centre wanders (the largest distance from its median position, in pixels of the 64x64 frame).

Then the README's first command, `t2v generate "a red circle bounces left and right" --seconds 8` (seed 0): its
ShapesBench scores and the span of the object's centre across the frame (the leftmost and rightmost centre, in
pixels; a bounce across the whole frame spans about 7 to 57), and with `--strip` a picture of its frames, one every
second. Prints markdown tables and writes OUT/card.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import centroids, evaluate_folder, measure_video, read_metadata
from t2v.shapes.evaluate import (
    METRICS,
    add_prompt_options,
    held_out_prompts,
    print_goal_table,
    render_folder,
    table_cells,
    training_prompts,
    write_strip,
)
from t2v.video_io import read_video

FIRST_COMMAND = "a red circle bounces left and right"
STILL = ["a red circle stays still", "a blue square stays still", "an orange triangle stays still", "a cyan square stays still"]


def wander(folder: Path) -> list[float]:
    """Per video of `folder`: the largest distance (px) of the object's centre from its median position."""
    out = []
    for entry in read_metadata(folder):
        xy = centroids(measure_video(read_video(folder / entry["file_name"])[0]))
        xy = xy[~np.isnan(xy).any(axis=1)]
        out.append(float(np.linalg.norm(xy - np.median(xy, axis=0), axis=1).max()) if len(xy) else float("nan"))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the videos, their metadata and card.json go")
    add_prompt_options(parser)
    parser.set_defaults(seeds=3)
    parser.add_argument("--strip", default=None, help="write a PNG strip of the first command's video here")
    args = parser.parse_args()
    describe_run()

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    out, results = Path(args.out), {}
    sets = {"training_pairs": training_prompts(args.prompts, args.prompt_seed),
            "held_out": held_out_prompts(args.prompts, args.prompt_seed), "stays_still": STILL}
    for name, prompts in sets.items():
        wall, _ = render_folder(pipe, prompts, args.seeds, args.seconds, "fifo", out / name)
        summary = evaluate_folder(out / name).summary
        results[name] = {**{m: getattr(summary, m) for m in METRICS}, "videos": summary.num_videos,
                         "realtime_factor": args.seconds * summary.num_videos / wall}
        print(f"{name}: done ({summary.num_videos} videos, {wall:.0f} s)", flush=True)
    results["stays_still"]["wander_px"] = wander(out / "stays_still")

    _, frames = render_folder(pipe, [FIRST_COMMAND], 1, 8.0, "fifo", out / "first_command")
    summary = evaluate_folder(out / "first_command").summary
    xs = centroids(measure_video(np.stack(frames)))[:, 0]
    first = {**{m: getattr(summary, m) for m in METRICS}, "x_min": float(np.nanmin(xs)), "x_max": float(np.nanmax(xs))}

    print(f"\n{args.prompts} prompts per set x {args.seeds} seeds, {args.seconds:g} s each (stays still: {len(STILL)} prompts)\n")
    print_goal_table("prompts", {name.replace("_", " "): r for name, r in results.items()})
    drift = results["stays_still"]["wander_px"]
    print(f"\nstays still: the centre wanders at most {np.nanmedian(drift):.1f} px (median over videos; largest {np.nanmax(drift):.1f})")
    print(f"\n`t2v generate \"{FIRST_COMMAND}\" --seconds 8`: " + ", ".join(f"{m} {c}" for m, c in zip(METRICS, table_cells(first)))
          + f"; the centre spans x = {first['x_min']:.0f} to {first['x_max']:.0f} of 64")
    (out / "card.json").write_text(json.dumps({"sets": sets, "seeds": args.seeds, "seconds": args.seconds, "results": results,
                                               "first_command": first}, indent=2) + "\n")
    if args.strip:
        write_strip({"seed 0": frames}, pipe.config.fps, 1.0, Path(args.strip))
        print(f"\nwrote {args.strip}")


if __name__ == "__main__":
    main()
