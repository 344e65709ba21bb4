"""CPU training speed of the Shapes recipe's stages: one thread against every core, decoded-video cache on and off.

`accelerate launch` runs each process on one thread unless OMP_NUM_THREADS is set, and a video
folder read with ffmpeg pays about 80 ms a sample to start the decoder. This runs each stage of
`training/recipes/shapes/` (its YAML, fewer steps) in a fresh process per configuration and reads
the seconds per optimizer step from the timestamps in metrics.jsonl, leaving out the first steps
(for the VAE one and a half passes over the folder, so that the cache is full). Prints a Markdown
table; compare the ratios, measured in one run, not the absolute times.

    python research/train_threads.py --videos 48
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from t2v.benchmark_utils import describe_run

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "shapes"
# Runs a training script in this process after setting the decoded-video cache's budget.
RUNNER = "import runpy, sys; import t2v.data.video_folder as v; v.CACHE_BYTES = int(sys.argv[1]); " \
         "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def seconds_per_step(output_dir: Path, warmup: int) -> float:
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    timed = lines[warmup:]
    return (timed[-1]["time"] - timed[0]["time"]) / (len(timed) - 1)


def quiet(*command, env=None) -> None:
    """Run a command to the end, its output discarded; CalledProcessError if it fails."""
    subprocess.run([sys.executable, *map(str, command)], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(script: str, args: list[str], threads: int, cache: bool) -> None:
    """A training script in a fresh process on `threads` threads, with the video cache's default budget or none."""
    from t2v.data.video_folder import CACHE_BYTES

    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    quiet("-c", RUNNER, CACHE_BYTES if cache else 0, ROOT / "training" / script, *args, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48, help="Shapes videos of 8 to 64 s in the folder")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    from t2v.shapes.folder import write_shapes_folder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_shapes_folder(root / "data", num_videos=args.videos, seconds=8, max_seconds=64, seed=0)
        quiet("-m", "t2v.shapes.model", root / "init")
        quiet(ROOT / "training" / "cache_latents.py", "--data_dir", data, "--model", root / "init", "--output_dir", root / "latents")
        quiet(ROOT / "training" / "fit_codec.py", "--latents_dir", root / "latents", "--model", root / "init", "--output_dir", root / "codec")
        vae_warmup = 3 * args.videos // 4 // 2  # one and a half passes of 4 videos a step
        stages = [  # name, script, its arguments, steps, warmup, reads videos
            ("VAE, 32×32 crops of 9-frame clips, batch 4", "train_vae.py",
             ["--config", str(RECIPE / "vae.yaml"), "--model", str(root / "init"), "--data_dir", str(data)], vae_warmup + 30, vae_warmup, True),
            ("text encoder + tokenizer + To2V, batch 16", "train_to2v.py",
             ["--config", str(RECIPE / "to2v.yaml"), "--model", str(root / "init"), "--latents_dir", str(root / "latents")], 200, 50, False),
            ("planner, 8 videos a step", "train_planner.py",
             ["--config", str(RECIPE / "planner.yaml"), "--model", str(root / "codec" / "model"), "--latents_dir", str(root / "latents")], 60, 20, False),
        ]
        rows = []
        for name, script, stage_args, steps, warmup, reads_videos in stages:
            configs = [(1, False), (1, True), (cores, False), (cores, True)] if reads_videos else [(1, True), (cores, True)]
            times = {}
            for threads, cache in configs:
                out = root / f"{script}-{threads}-{cache}"
                run(script, [*stage_args, "--output_dir", str(out), "--max_train_steps", str(steps), "--checkpointing_steps", str(10 * steps)],
                    threads, cache)
                times[threads, cache] = seconds_per_step(out, warmup)
            base = times[configs[0]]
            for (threads, cache), value in times.items():
                rows.append((name, threads, ("on" if cache else "off") if reads_videos else "-", value, base / value))

    describe_run()
    print("\n| stage | threads | video cache | s / step | speed-up |\n| --- | --- | --- | --- | --- |")
    for name, threads, cache, value, ratio in rows:
        print(f"| {name} | {threads} | {cache} | {value:.3f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
