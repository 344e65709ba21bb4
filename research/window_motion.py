"""Motion in one window against motion in FIFO: is it lost in the denoiser or in the stitching?

A video of one window (one clip, 17 frames for the packaged model) is ordinary sampling: no FIFO
queue, no diagonal noise levels, no neighbouring windows. If the denoiser moved the object right
in one window and FIFO lost it, one-window videos would score far better on motion than long ones.
For every motion of docs/shapes_world.md, `--pairs` color-shape pairs seen in training (never the held-out
ones, so that composition is not what is measured), seed i for the i-th pair: one window, and a
FIFO video of `--seconds` of which the frames after the first window are scored (FIFO samples its
first window exactly as the one-window video does). ShapesBench's motion accuracy (windows of 2 s)
and jumps per minute, by motion:

    python research/window_motion.py [--model DIR] [--pairs 8] [--seconds 20]
"""

import argparse

import numpy as np
import torch

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import score_video, summarize
from t2v.shapes.world import COLORS, HELD_OUT, MOTIONS, SHAPES, format_caption


def training_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` color-shape pairs that training sees, in an order drawn from `seed`."""
    pairs = [(color, shape) for color in COLORS for shape in SHAPES if (color, shape) not in HELD_OUT]
    np.random.default_rng(seed).shuffle(pairs)
    return pairs[:count]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    parser.add_argument("--pairs", type=int, default=8, help="color-shape pairs per motion (at most 19)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the FIFO videos")
    args = parser.parse_args()
    describe_run()
    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    window = pipe.config.clip_frames
    rows = []
    for motion in MOTIONS:
        scores = {"one window": [], "FIFO after its first window": []}
        for i, (color, shape) in enumerate(training_pairs(args.pairs)):
            caption = format_caption([{"color": color, "shape": shape, "motion": motion}])
            one = pipe(caption, num_frames=window, generator=torch.Generator().manual_seed(i)).frames[0]
            long = pipe(caption, seconds=args.seconds, generator=torch.Generator().manual_seed(i)).frames[0]
            scores["one window"].append(score_video(one, caption))
            scores["FIFO after its first window"].append(score_video(long[window:], caption))
        for name, video_scores in scores.items():
            summary = summarize(video_scores)  # motion: mean over videos; jumps: pooled over all minutes
            rows.append((motion, name, summary.motion_accuracy, summary.jumps_per_minute))
    print(f"\n{args.pairs} training pairs per motion; one window = {window} frames; FIFO videos of {args.seconds:g} s\n")
    print("| motion | video | motion accuracy | jumps / min |\n| --- | --- | --- | --- |")
    for motion, name, accuracy, jumps in rows:
        print(f"| {motion} | {name} | {accuracy:.2f} | {jumps:.1f} |")
    for name in ("one window", "FIFO after its first window"):
        mine = [r for r in rows if r[1] == name]
        print(f"| all | {name} | {np.mean([r[2] for r in mine]):.2f} | {np.mean([r[3] for r in mine]):.1f} |")


if __name__ == "__main__":
    main()
