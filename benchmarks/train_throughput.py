"""Training throughput (samples/s) of each stage on the packaged model's configuration.

Generates a small Shapes folder, runs each stage for --steps optimizer steps, and reads the rate
from the timestamps in metrics.jsonl (the first --warmup steps are left out). Prints a Markdown
table with the device, the date and the command.

    python benchmarks/train_throughput.py --steps 12 --batch-size 4
"""

import argparse
import json
import tempfile
from pathlib import Path

from t2v.benchmark_utils import describe_run


def rate(output_dir: Path, batch_size: int, warmup: int) -> float:
    lines = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    timed = lines[warmup:]
    return batch_size * (len(timed) - 1) / (timed[-1]["time"] - timed[0]["time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    from t2v.shapes.folder import write_shapes_folder
    from t2v.training import planner, to2v, vae

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_shapes_folder(root / "data", num_videos=16, seconds=10, seed=0)
        common = ["--data_dir", str(root / "data"), "--max_train_steps", str(args.steps), "--train_batch_size", str(args.batch_size),
                  "--checkpointing_steps", str(10 * args.steps)]
        rows = []
        for name, stage, extra, unit in [
            ("VAE", vae, ["--from_scratch"], "clips of 17 frames"),
            ("tokenizer + To2V (full)", to2v, ["--train_text_encoder"], "clips of 17 frames"),
            ("tokenizer + To2V (LoRA r16)", to2v, ["--train_mode", "lora"], "clips of 17 frames"),
            ("planner (4 clips per sample)", planner, ["--num_clips", "4"], "videos of 4 clips"),
        ]:
            out = root / name.split()[0]
            stage.main([*common, "--output_dir", str(out), *extra])
            rows.append((name, rate(out, args.batch_size, args.warmup), unit))
            (out / "metrics.jsonl").unlink()

    describe_run()
    print("\n| stage | samples/s | sample |\n| --- | --- | --- |")
    for name, value, unit in rows:
        print(f"| {name} | {value:.2f} | {unit} |")


if __name__ == "__main__":
    main()
