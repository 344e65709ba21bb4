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
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_run  # noqa: E402

from t2v import T2VPipeline, default_model_path  # noqa: E402
from t2v.shapes.bench import GOALS, evaluate_folder  # noqa: E402
from t2v.shapes.world import COLORS, HELD_OUT, MOTIONS, auto_storyboard, format_caption  # noqa: E402
from t2v.video_io import VideoWriter, to_uint8  # noqa: E402

CONFIGS = {  # name: (use the planner's tokens, stitching, sparse attention, storyboard)
    "clips": (False, "clips", False, True),
    "fifo": (False, "fifo", False, True),
    "planner+clips": (True, "clips", False, True),
    "planner+fifo": (True, "fifo", False, True),
    "planner+fifo sparse": (True, "fifo", True, True),
    "planner+fifo whole caption": (True, "fifo", False, False),
}
SPARSE = dict(density=0.4, mode="semantic", query_tile=16, key_block=8, sink_tokens=8)  # 4 of a window's 10 key blocks
METRICS = ("color_accuracy", "shape_accuracy", "motion_accuracy", "identity_consistency", "jumps_per_minute", "flicker",
           "change_accuracy")


def held_out_prompts(count: int, seed: int = 0) -> list[str]:
    """`count` captions whose first segment is a held-out pair; every second one changes halfway."""
    rng = np.random.default_rng(seed)
    prompts = []
    for i in range(count):
        color, shape = HELD_OUT[i % len(HELD_OUT)]
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        segments = [{"color": color, "shape": shape, "motion": motion}]
        if i % 2:
            if rng.random() < 0.5:
                segments.append({"color": str(rng.choice([c for c in COLORS if c != color]))})
            else:
                segments.append({"motion": str(rng.choice([m for m in MOTIONS if m != motion]))})
        prompts.append(format_caption(segments))
    return prompts


def add_prompt_options(parser: argparse.ArgumentParser) -> None:
    """The options that pick the model, the held-out prompts, their seeds and length; `vae_ceiling.py`
    and `jump_phase.py` take the same, so that their videos are the ones this ablation makes."""
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--prompt-seed", type=int, default=0, help="draws the prompts; the tables use 0, and another "
                        "seed gives a validation set for choosing between models without looking at them")


def table_cells(row: dict) -> list[str]:
    """One markdown table row's cells for the ShapesBench METRICS of `row` (a metric may be None)."""
    return ["n/a" if row[m] is None else f"{row[m]:.2f}" if m == "jumps_per_minute" else f"{row[m]:.3f}" for m in METRICS]


def without_planner(pipe: T2VPipeline):
    """Make `pipe.plan` return zero tokens: the model's token-dropped (text only) condition."""
    plan = pipe.plan

    def zero_plan(*args, **kwargs):
        return torch.zeros_like(plan(*args, **kwargs))

    pipe.plan = zero_plan
    return lambda: setattr(pipe, "plan", plan)


def generate(pipe, prompt, seconds, seed, stitching, path: Path, **kwargs) -> tuple[float, list[np.ndarray]]:
    """Stream one video to `path` (`kwargs` go to `pipe.stream`); returns the wall seconds and the frames (uint8) for the strip."""
    start = time.perf_counter()
    stream = pipe.stream(prompt, seconds=seconds, stitching=stitching, generator=torch.Generator().manual_seed(seed), **kwargs)
    frames = []
    with VideoWriter(path, stream.fps) as writer:
        for chunk in stream:
            pixels = to_uint8(chunk[0])
            writer.append(pixels)
            frames.extend(pixels)
    return time.perf_counter() - start, frames


def render_folder(pipe, prompts: list[str], seeds: int, seconds: float, stitching: str, folder: Path, storyboard: bool = True,
                  **kwargs) -> tuple[float, list[np.ndarray]]:
    """Every prompt with every seed as a video in `folder`, beside its metadata.jsonl (`kwargs` go to
    `pipe.stream`; with `storyboard`, a caption with changes is given as its storyboard, as `t2v generate`
    does); returns the wall seconds of all of them and the first video's frames (uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    wall, lines, first = 0.0, [], None
    for p, prompt in enumerate(prompts):
        parts = auto_storyboard(prompt) if storyboard else None
        for seed in range(seeds):
            file_name = f"{p:02d}-seed{seed}.mp4"
            taken, frames = generate(pipe, prompt, seconds, seed, stitching, folder / file_name, storyboard=parts, **kwargs)
            wall += taken
            first = frames if first is None else first
            lines.append(json.dumps({"file_name": file_name, "text": prompt, "seed": seed}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return wall, first


def write_strip(rows: dict[str, list[np.ndarray]], fps: float, every: float, path: Path) -> None:
    """One row per configuration: its frames every `every` seconds, doubled in size, labelled on the left."""
    from PIL import Image, ImageDraw

    label_width, scale = 150, 2
    picks = {name: frames[:: max(1, round(every * fps))] for name, frames in rows.items()}
    columns = min(len(p) for p in picks.values())
    size = 64 * scale
    image = Image.new("RGB", (label_width + columns * (size + 4), len(picks) * (size + 4) + 20), "white")
    draw = ImageDraw.Draw(image)
    for c in range(columns):
        draw.text((label_width + c * (size + 4) + 4, 4), f"{c * every:g} s", fill="black")
    for r, (name, frames) in enumerate(picks.items()):
        top = 20 + r * (size + 4)
        draw.text((4, top + size // 2 - 6), name, fill="black")
        for c in range(columns):
            tile = Image.fromarray(frames[c]).resize((size, size), Image.NEAREST)
            image.paste(tile, (label_width + c * (size + 4), top))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


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

    goal = {m: f"{op} {target:g}" for m, (op, target) in GOALS.items()}
    print(f"\n{len(prompts)} held-out prompts x {args.seeds} seeds, {args.seconds:g} s each\n")
    print("| configuration | " + " | ".join(METRICS) + " | real-time factor |")
    print("| --- |" + " --- |" * (len(METRICS) + 1))
    print("| goal | " + " | ".join(goal.get(m, "") for m in METRICS) + " | >= 1 |")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(table_cells(r)) + f" | {r['realtime_factor']:.2f} |")
    (out / "ablation.json").write_text(json.dumps({"prompts": prompts, "seeds": args.seeds, "seconds": args.seconds,
                                                   "results": results}, indent=2) + "\n")
    if args.strip:
        write_strip(strips, pipe.config.fps, 6.0, Path(args.strip))
        print(f"\nwrote {args.strip}")


if __name__ == "__main__":
    main()
