"""Long videos: peak memory, time per video second and seams of FIFO against the two usual ways to stitch.

For every stitching mode (fifo: FIFO diagonal denoising; single: all frames in one window; clips:
clips made and decoded independently) and every length, fresh processes load the model, make one
warm-up frame, stream the video (frames are not kept) and report:

- peak RSS, measured in a process run with MALLOC_MMAP_THRESHOLD_=65536 so that glibc returns every
  freed buffer to the system and RSS follows live memory (with the default allocator, reuse of freed
  heap memory moves the peak by +-80 MiB from run to run at the same length; that peak is shown too);
- wall time of the generation in a process with the default allocator: in all, from the prompt to
  the first frame (text, plan, first window), and per video second after the first frame;
- a seam measure: the mean absolute difference between consecutive frames across the boundaries of
  the plan's clips, divided by the same mean inside clips (1.0 = seams as smooth as the rest).

Prints Markdown tables with the device, the date and the command.

    python benchmarks/long_video.py --seconds 10 60 120 --modes fifo single clips
"""

import argparse
import json
import os
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
    pipe(args.prompt, num_frames=1, num_inference_steps=2, planner_steps=2)  # warm-up: one-time initialisation
    start = time.perf_counter()
    first = None
    stream = pipe.stream(args.prompt, seconds=args.length, stitching=args.mode, num_inference_steps=args.steps,
                         generator=torch.Generator().manual_seed(args.seed))
    edges = boundaries(args.mode, stream.num_frames, pipe.config.clip_frames, pipe.latent_frames_per_clip,
                       pipe.vae_scale_factor_temporal)
    sums, counts, previous, index = [0.0, 0.0], [0, 0], None, 0
    for chunk in stream:
        first = first or time.perf_counter()
        for frame in chunk[0]:
            if previous is not None:
                kind = 0 if index in edges else 1
                sums[kind] += float(np.abs(frame - previous).mean())
                counts[kind] += 1
            previous, index = frame, index + 1
    elapsed = time.perf_counter() - start
    seam = (sums[0] / counts[0]) / (sums[1] / counts[1]) if counts[0] and counts[1] else float("nan")
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": elapsed,
                      "to_first": first - start, "frames": index, "seam": seam}))


def run(mode: str, seconds: float, prompt: str, seed: int, steps: int, live_memory: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--length", str(seconds), "--prompt", prompt,
           "--seed", str(seed), "--steps", str(steps)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"} if live_memory else None
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
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

    from t2v.benchmark_utils import describe_run

    describe_run()
    print(f"default model (random weights), 64x64, 8 fps, {args.steps} steps, guidance on; prompt: {PROMPTS[0]!r}, seed 0\n")
    results, memory = {}, {}
    for mode in args.modes:
        for seconds in args.seconds:
            results[mode, seconds] = run(mode, seconds, PROMPTS[0], 0, args.steps)
            memory[mode, seconds] = run(mode, seconds, PROMPTS[0], 0, args.steps, live_memory=True)["peak_mb"]
            print(f"  {mode} {seconds:g} s: {results[mode, seconds]}, live peak {memory[mode, seconds]:.0f}", file=sys.stderr, flush=True)

    shortest = min(args.seconds)
    print("| stitching | video | peak RSS, live (MiB) | / at shortest | peak RSS, default allocator (MiB) | wall time (s) | "
          "to first frame (s) | per video second | per video second after the first frame | / at shortest | seam measure |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes:
        base = results[mode, shortest]
        base_rate = (base["seconds"] - base["to_first"]) / shortest
        for seconds in args.seconds:
            r = results[mode, seconds]
            rate = (r["seconds"] - r["to_first"]) / seconds
            print(f"| {mode} | {seconds:g} s | {memory[mode, seconds]:.0f} | {memory[mode, seconds] / memory[mode, shortest]:.3f} | "
                  f"{r['peak_mb']:.0f} | {r['seconds']:.1f} | {r['to_first']:.2f} | {r['seconds'] / seconds:.3f} | {rate:.3f} | "
                  f"{rate / base_rate:.2f} | {r['seam']:.2f} |")

    print(f"\nSeam measure over {len(PROMPTS)} prompts x 2 seeds, {args.seam_seconds:g} s each (mean, min-max):\n")
    print("| stitching | seam measure |")
    print("| --- | --- |")
    for mode in args.modes:
        seams = [run(mode, args.seam_seconds, p, s, args.steps)["seam"] for p in PROMPTS for s in (0, 1)]
        print(f"| {mode} | {sum(seams) / len(seams):.2f} ({min(seams):.2f}-{max(seams):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
