"""Long videos: peak memory, time per video second and seams of FIFO against the two usual ways to stitch.

For every stitching mode (fifo: FIFO diagonal denoising; single: all frames in one window; clips:
clips made and decoded independently) and every length, a fresh process loads the model, streams
the video (frames are not kept) and reports its peak RSS, the generation time (loading left out) and
a seam measure: the mean absolute difference between consecutive frames across the boundaries of
the plan's clips, divided by the same mean inside clips (1.0 = seams as smooth as the rest). Prints
a Markdown table with the device, the date and the command.

    python benchmarks/long_video.py --seconds 10 60 120 --modes fifo single clips
"""

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import time

PROMPTS = [
    "a blue square moves in a circle, then it turns yellow",
    "a red circle bounces left and right",
    "a green triangle moves up and down, then it stays still",
]


def boundaries(mode: str, num_frames: int, clip_frames: int, latent_window: int, temporal: int) -> set[int]:
    """First pixel frame of every clip but the first, for the plan's clips of each stitching mode."""
    if mode == "clips":
        return set(range(clip_frames, num_frames, clip_frames))
    # latent frame a >= 1 decodes to pixel frames 4a - 3 ... 4a; clip c starts at latent frame c·f
    step = latent_window * temporal
    return set(range(step - temporal + 1, num_frames, step))


def child(args) -> None:
    import numpy as np
    import torch

    from t2v import T2VPipeline, default_model_path

    pipe = T2VPipeline.from_pretrained(default_model_path())
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    stream = pipe.stream(args.prompt, seconds=args.length, stitching=args.mode, num_inference_steps=args.steps,
                         generator=torch.Generator().manual_seed(args.seed))
    edges = boundaries(args.mode, stream.num_frames, pipe.config.clip_frames, pipe.latent_frames_per_clip,
                       pipe.vae_scale_factor_temporal)
    sums, counts, previous, index = [0.0, 0.0], [0, 0], None, 0
    for chunk in stream:
        for frame in chunk[0]:
            if previous is not None:
                kind = 0 if index in edges else 1
                sums[kind] += float(np.abs(frame - previous).mean())
                counts[kind] += 1
            previous, index = frame, index + 1
    elapsed = time.perf_counter() - start
    seam = (sums[0] / counts[0]) / (sums[1] / counts[1]) if counts[0] and counts[1] else float("nan")
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": elapsed,
                      "frames": index, "seam": seam}))


def run(mode: str, seconds: float, prompt: str, seed: int, steps: int) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--length", str(seconds), "--prompt", prompt,
           "--seed", str(seed), "--steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 120])
    parser.add_argument("--modes", nargs="+", default=["fifo", "single", "clips"], choices=["fifo", "single", "clips"])
    parser.add_argument("--seam-seconds", type=float, default=30, help="length of the extra videos for the seam measure")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="fifo", help=argparse.SUPPRESS)
    parser.add_argument("--length", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--prompt", default=PROMPTS[0], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    import torch

    print(f"device: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"date: {datetime.date.today()}")
    print(f"command: python benchmarks/{' '.join(sys.argv[0].split('/')[-1:] + sys.argv[1:])}")
    print(f"default model (random weights), 64x64, 8 fps, {args.steps} steps, guidance on; prompt: {PROMPTS[0]!r}, seed 0\n")
    results = {}
    for mode in args.modes:
        for seconds in args.seconds:
            results[mode, seconds] = run(mode, seconds, PROMPTS[0], 0, args.steps)
            print(f"  {mode} {seconds:g} s: {results[mode, seconds]}", file=sys.stderr, flush=True)

    print("| stitching | video | peak RSS (MiB) | peak / peak at shortest | time per video second / FIFO's at the same length | time per video second / its own at the shortest | seam measure |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    shortest = min(args.seconds)
    for mode in args.modes:
        for seconds in args.seconds:
            r, base = results[mode, seconds], results[mode, shortest]
            fifo = results.get(("fifo", seconds))
            per_second = r["seconds"] / seconds
            vs_fifo = f"{per_second / (fifo['seconds'] / seconds):.2f}" if fifo else "-"
            print(f"| {mode} | {seconds:g} s | {r['peak_mb']:.0f} | {r['peak_mb'] / base['peak_mb']:.3f} | {vs_fifo} | "
                  f"{per_second / (base['seconds'] / shortest):.2f} | {r['seam']:.2f} |")

    print(f"\nSeam measure over {len(PROMPTS)} prompts x 2 seeds, {args.seam_seconds:g} s each (mean, min-max):\n")
    print("| stitching | seam measure |")
    print("| --- | --- |")
    for mode in args.modes:
        seams = [run(mode, args.seam_seconds, p, s, args.steps)["seam"] for p in PROMPTS for s in (0, 1)]
        print(f"| {mode} | {sum(seams) / len(seams):.2f} ({min(seams):.2f}-{max(seams):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
