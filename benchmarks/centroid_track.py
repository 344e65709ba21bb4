"""The object's centroid track, frame by frame, as ShapesBench measures it: how a motion goes wrong.

For videos it makes (`--prompt`, one per seed) or reads (`--video`), prints every frame's centroid
(x, y in pixels), its angle about the frame's centre (degrees, counter-clockwise on screen) and,
for each 2-s window, the motion ShapesBench's `classify_motion` reads there.

    python benchmarks/centroid_track.py --prompt "a red square bounces left and right" --frames 17 --seeds 0 1 2
        [--guidance-scale 5] [--steps 25] [--model DIR]
    python benchmarks/centroid_track.py --video runs/done_when/seed0.mp4
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import describe_run  # noqa: E402

from t2v.data.shapes import FPS, SIZE  # noqa: E402
from t2v.eval.shapes_bench import MIN_WINDOW_FRAMES, WINDOW_SECONDS, classify_motion, measure_video  # noqa: E402


def print_track(name: str, frames) -> None:
    measured = measure_video(frames)
    xy = np.array([(m.x, m.y) if m else (np.nan, np.nan) for m in measured])
    angle = np.degrees(np.arctan2(-(xy[:, 1] - SIZE / 2), xy[:, 0] - SIZE / 2))
    print(f"\n{name}: frame x y angle")
    for i, ((x, y), a) in enumerate(zip(xy, angle)):
        print(f"{i:4d} {x:5.1f} {y:5.1f} {a:6.0f}")
    window = round(WINDOW_SECONDS * FPS)
    reads = [f"{s}-{min(s + window, len(xy))}: {classify_motion(xy[s:s + window])}"
             for s in range(0, len(xy), window) if len(xy) - s >= MIN_WINDOW_FRAMES]
    print("windows: " + "; ".join(reads))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", nargs="*", default=[], help="video files to read")
    parser.add_argument("--prompt", help="make videos of this prompt instead")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    args = parser.parse_args()
    if not args.video and not args.prompt:
        parser.error("give --video FILE ... or --prompt TEXT.")
    describe_run()
    from t2v.video_io import read_video

    for path in args.video:
        print_track(path, read_video(path)[0])
    if args.prompt:
        from t2v import T2VPipeline, default_model_path

        pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
        pipe.set_progress_bar_config(disable=True)
        for seed in args.seeds:
            frames = pipe(args.prompt, num_frames=args.frames, guidance_scale=args.guidance_scale, num_inference_steps=args.steps,
                          generator=torch.Generator().manual_seed(seed)).frames[0]
            print_track(f"{args.prompt!r}, seed {seed}, guidance {args.guidance_scale:g}, {args.steps} steps", frames)


if __name__ == "__main__":
    main()
