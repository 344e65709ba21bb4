"""The TokensGen ablation in miniature: ShapesBench on held-out prompts, one row per way of making a long video.

    python benchmarks/shapes_ablation.py --model runs/shapes/model --out runs/ablation [--seconds 60]
        [--prompts 5] [--seeds 2] [--prompt-seed 0] [--configs ...] [--strip docs/ablation.png]

Every prompt starts with a held-out color-shape pair (never seen in training); half of them change
color or motion halfway. The same prompts and seeds go through every configuration:

- `clips`: clips made independently from the text alone (no planner tokens, no FIFO): seams.
- `fifo`: FIFO diagonal denoising from the text alone (the tokens zeroed, as token dropout trains).
- `planner+clips`: the planner's tokens, clips made independently.
- `planner+fifo`: the full pipeline (the default of `t2v generate`).
- `planner+fifo sparse`: the same with semantic sparse self-attention in the denoiser and the
  planner (tiles of 16 queries, blocks of 8 keys, density 0.4: 4 of a window's 10 key blocks, as
  the 64×64 model's windows hold only 80 tokens; the first block and the noisiest window stay dense).
- `planner+fifo whole caption`: the full pipeline without a storyboard: every window of the
  denoiser reads the whole caption. In every other row a caption with a change is given as its
  storyboard (`auto_storyboard`, as `t2v generate` does), so each part's windows read that part's
  prompt.

Videos go to OUT/<config>/ with a metadata.jsonl, so `t2v eval shapes --videos OUT/<config>` scores
any of them again. Prints a markdown table (ShapesBench metrics and the real-time factor: seconds of
video made per second of wall time, measured in this run) and writes OUT/ablation.json; `--strip`
writes a picture: one row of frames per configuration, every 6 s of the first video.
"""

import argparse
import json
from pathlib import Path

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import evaluate_folder
from t2v.shapes.evaluate import METRICS, add_prompt_options, held_out_prompts, print_goal_table, render_folder, without_planner, write_strip

CONFIGS = {  # name: (use the planner's tokens, stitching, sparse attention, storyboard)
    "clips": (False, "clips", False, True),
    "fifo": (False, "fifo", False, True),
    "planner+clips": (True, "clips", False, True),
    "planner+fifo": (True, "fifo", False, True),
    "planner+fifo sparse": (True, "fifo", True, True),
    "planner+fifo whole caption": (True, "fifo", False, False),
}
SPARSE = dict(density=0.4, mode="semantic", query_tile=16, key_block=8, sink_tokens=8)  # 4 of a window's 10 key blocks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the videos, their metadata and ablation.json go")
    add_prompt_options(parser)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--strip", default=None, help="write a PNG strip of the first video of every configuration here")
    args = parser.parse_args()
    describe_run()

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    prompts = held_out_prompts(args.prompts, args.prompt_seed)
    out = Path(args.out)
    results, strips = {}, {}
    for name in args.configs:
        use_planner, stitching, sparse, storyboard = CONFIGS[name]
        restore = None if use_planner else without_planner(pipe)
        if sparse:
            pipe.enable_sparse_attention(**SPARSE)
        folder = out / name.replace(" ", "-").replace("+", "_")
        wall, strips[name] = render_folder(pipe, prompts, args.seeds, args.seconds, stitching, folder, storyboard)
        videos = len(prompts) * args.seeds
        if sparse:
            pipe.disable_sparse_attention()
        if restore:
            restore()
        summary = evaluate_folder(folder).summary
        results[name] = {
            **{m: getattr(summary, m) for m in METRICS},
            "realtime_factor": args.seconds * videos / wall,
            "videos": videos,
            "folder": str(folder),
        }
        print(f"{name}: done ({videos} videos, {wall:.0f} s)", flush=True)

    print(f"\n{len(prompts)} held-out prompts x {args.seeds} seeds, {args.seconds:g} s each\n")
    print_goal_table("configuration", results)
    (out / "ablation.json").write_text(json.dumps({"prompts": prompts, "seeds": args.seeds, "seconds": args.seconds,
                                                   "results": results}, indent=2) + "\n")
    if args.strip:
        write_strip(strips, pipe.config.fps, 6.0, Path(args.strip))
        print(f"\nwrote {args.strip}")


if __name__ == "__main__":
    main()
