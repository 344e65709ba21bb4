"""Whether two models keep a still object in view: ShapesBench's detected share, color and shape per seed.

    python research/still_objects.py runs/full/model runs/full2/model [--prompts "a red square stays still" ...]
        [--seeds 4] [--seconds 4] [--shift 1]

Renders each prompt for each seed as `t2v generate` does (planner + FIFO) with every model, at `--shift` (the
packaged model samples at 1), and prints per seed detected / color / shape accuracy: the measures of the
package's own test of a trained pair that stays still (tests/test_shapes_model.py).
"""

import argparse

import torch

from t2v import T2VPipeline
from t2v.shapes.bench import score_video
from t2v.video_io import to_uint8

PROMPTS = ["a red square stays still", "a blue square stays still", "a red square bounces left and right"]


def still_parser(description: str) -> argparse.ArgumentParser:
    """The options of this script and of planned_tokens.py: models, prompts, seeds, seconds, shift."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--prompts", nargs="+", default=PROMPTS)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--shift", type=float, default=1.0)
    return parser


def load_at_shift(model: str, shift: float) -> T2VPipeline:
    """A model folder's pipeline, quiet, sampling at `shift`."""
    pipe = T2VPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, shift=shift)
    return pipe


def main():
    args = still_parser(__doc__.splitlines()[0]).parse_args()
    for model in args.models:
        pipe = load_at_shift(model, args.shift)
        for prompt in args.prompts:
            cells = []
            for seed in range(args.seeds):
                frames = pipe(prompt, seconds=args.seconds, generator=torch.Generator().manual_seed(seed)).frames[0]
                score = score_video(to_uint8(frames), prompt)
                cells.append(f"{score.detected:.2f}/{score.color_accuracy:.2f}/{score.shape_accuracy:.2f}")
            print(f"{model} | {prompt} | detected/color/shape, seeds 0-{args.seeds - 1}: {'  '.join(cells)}")


if __name__ == "__main__":
    main()
