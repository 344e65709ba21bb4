"""The object's centroid track, frame by frame, as ShapesBench measures it: how a motion goes wrong.

For videos it makes (`--prompt`, one per seed) or reads (`--video`, captioned by the metadata.jsonl
beside it), prints every frame's centroid (x, y in pixels) and its angle about the frame's centre
(degrees, counter-clockwise on screen), then ShapesBench's motion windows: the motion the caption
asks for and the one `score_video` reads there.

    python research/centroid_track.py --prompt "a red square bounces left and right" --frames 17 --seeds 0 1 2
        [--guidance-scale 5] [--steps 25] [--model DIR]
    python research/centroid_track.py --video runs/done_when/seed0.mp4
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import centroids, measure_video, read_metadata, score_video
from t2v.shapes.world import SIZE, parse_caption


def print_track(name: str, frames, caption: str) -> None:
    xy = centroids(measure_video(frames))
    angle = np.degrees(np.arctan2(-(xy[:, 1] - SIZE / 2), xy[:, 0] - SIZE / 2))
    print(f"\n{name}: frame x y angle")
    for i, ((x, y), a) in enumerate(zip(xy, angle)):
        print(f"{i:4d} {x:5.1f} {y:5.1f} {a:6.0f}")
    windows = score_video(frames, caption).windows  # measures the frames again: a diagnostic, a few ms
    print("windows: " + "; ".join(f"{w.start}-{w.end}: {w.measured} (asked: {w.expected})" for w in windows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", nargs="*", default=[], help="video files to read, listed in a metadata.jsonl beside them")
    parser.add_argument("--prompt", help="make videos of this prompt instead")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--guidance-scale", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--model", default=None, help="a t2v model folder (default: the packaged model)")
    args = parser.parse_args()
    if not args.video and not args.prompt:
        parser.error("give --video FILE ... or --prompt TEXT.")
    if args.prompt:
        try:
            parse_caption(args.prompt)
        except ValueError as err:
            parser.error(str(err))
    describe_run()
    from t2v.video_io import read_video

    for path in map(Path, args.video):
        try:
            captions = {entry["file_name"]: entry["text"] for entry in read_metadata(path.parent)}
        except ValueError as err:
            parser.error(str(err))
        if path.name not in captions:
            parser.error(f"{path.parent / 'metadata.jsonl'} has no line for {path.name}.")
        print_track(str(path), read_video(path)[0], captions[path.name])
    if args.prompt:
        from t2v import T2VPipeline, default_model_path

        pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
        pipe.set_progress_bar_config(disable=True)
        for seed in args.seeds:
            frames = pipe(args.prompt, num_frames=args.frames, guidance_scale=args.guidance_scale, num_inference_steps=args.steps,
                          generator=torch.Generator().manual_seed(seed)).frames[0]
            print_track(f"{args.prompt!r}, seed {seed}, guidance {args.guidance_scale:g}, {args.steps} steps", frames, args.prompt)


if __name__ == "__main__":
    main()
