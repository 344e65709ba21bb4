"""A scaling study of the Shapes model's denoiser: quality against CPU-minutes, parameters and the VAE.

    python research/scaling_study.py prepare --out runs/study                 # data + latent caches
    python research/scaling_study.py train --out runs/study --name 8x-w64 --vae 8 --width 64 --minutes 15 30 45
    python research/scaling_study.py train --out runs/study --name 4x-w192-p4 --vae 4 --width 192 --patch 4
    python research/scaling_study.py score --out runs/study --name 8x-w64
    python research/scaling_study.py table --out runs/study                    # every scored run, one markdown table
    python research/scaling_study.py adopt --out runs/study --name full --recipe runs/full \
        --model 16000=runs/full/to2v_parts/1 32000=runs/full/to2v_parts/2

Every run trains the To2V stage of the Shapes recipe (`training/recipes/shapes/to2v.yaml`: text
encoder, video tokenizer and denoiser from scratch, constant rate after warm-up) on the cached
latents of one VAE, for the same minutes of compute. The minutes are the run's steps times its median
seconds per step, read from its own metrics.jsonl: a neighbour that slows some steps down (or a pause)
does not shorten the run's budget. A checkpoint is kept every 100 steps and, at each mark, the last
one within the minutes is exported. The run is stopped at the last mark.

`score` fits the token codec to each exported denoiser and renders the 20 validation prompts
(held-out color-shape pairs, `--prompt-seed 1`, 30 s, FIFO) from the true videos' tokens through the
codec: what the denoiser draws given what a perfect planner would hand it, so runs compare on the
denoiser alone, without a planner trained for each. Results go to OUT/NAME/scores.json. A mark whose
videos were all made (their metadata.jsonl is written last) is scored again without making them again.

`adopt` takes To2V models that a recipe run exported at given steps (e.g. the end of each part of
`run.sh --profile full`) as marks of a run, with that run's own latents and seconds per step, so that
`score` and `table` treat them as the study's runs.

VAEs: `8` is the packaged model's (8× spatial, trained by the recipe); `4` is the 4× VAE of
`research/vae_compression.py` trained by the recipe's two VAE stages (`prepare --vae4`).
"""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "recipes" / "shapes"
LAUNCH = ["accelerate", "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
CHECKPOINT_EVERY = 100
WARMUP = 50  # steps left out of the median (start-up, first allocations)


def run(*cmd):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def vae_model(out: Path, vae: str) -> Path:
    return ROOT / "t2v" / "default_model" if vae == "8" else out / "vae4" / "vae_video" / "model"


def prepare(args):
    out = Path(args.out)
    data = out / "data" / "train"
    if not (out / "data" / "done").exists():
        run("t2v", "data", "shapes", "--out", data, "--num", 240, "--seconds", 8, "--max-seconds", 64, "--seed", 0)
        (out / "data" / "done").touch()
    if args.vae4 and not (vae_model(out, "4") / "model_index.json").exists():
        v4 = out / "vae4"
        if not (v4 / "init" / "model_index.json").exists():
            run(sys.executable, ROOT / "research" / "vae_compression.py", v4 / "init")
        for stage, config, start in (("vae", "vae.yaml", v4 / "init"), ("vae_video", "vae_video.yaml", v4 / "vae" / "model")):
            if not (v4 / stage / "model" / "model_index.json").exists():
                run(*LAUNCH, ROOT / "training" / "train_vae.py", "--config", RECIPE / config, "--model", start, "--data_dir", data,
                    "--output_dir", v4 / stage, "--resume_from_checkpoint", "latest")
    for vae in ("8", "4") if args.vae4 else ("8",):
        cache = out / f"latents{vae}"
        if not (cache / "done").exists():
            run(sys.executable, ROOT / "training" / "cache_latents.py", "--data_dir", data, "--model", vae_model(out, vae), "--output_dir", cache)
            (cache / "done").touch()


def seconds_per_step(metrics: Path) -> tuple[int, float | None]:
    """(the last step logged, the median seconds between two steps after the warm-up), from a run's metrics.jsonl."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.exists() else []
    gaps = sorted(b["time"] - a["time"] for a, b in zip(rows[WARMUP:], rows[WARMUP + 1 :]))
    return (rows[-1]["step"] if rows else 0), (gaps[len(gaps) // 2] if len(gaps) >= 100 else None)


def loss_before(metrics: Path, step: int) -> float:
    """The mean loss of the 200 steps up to `step` (the table's "loss (last 200)"), from a run's metrics.jsonl."""
    losses = [json.loads(line)["loss"] for line in metrics.read_text().splitlines() if line.strip()][:step][-200:]
    return sum(losses) / len(losses)


def train(args):
    out = Path(args.out)
    run_dir = out / args.name
    init = run_dir / "init"
    if not (init / "model_index.json").exists():
        run(sys.executable, "-m", "t2v.shapes.model", init, "--width", args.width, "--layers", args.layers, "--patch", args.patch)
        shutil.rmtree(init / "vae")
        shutil.copytree(vae_model(out, args.vae) / "vae", init / "vae")
    to2v = run_dir / "to2v"
    marks = sorted(args.minutes)
    if not (run_dir / "trained").exists():
        cmd = [*LAUNCH, ROOT / "training" / "train_to2v.py", "--config", RECIPE / "to2v.yaml", "--latents_dir", out / f"latents{args.vae}",
               "--model", init, "--output_dir", to2v, "--max_train_steps", 10**7, "--checkpointing_steps", CHECKPOINT_EVERY,
               "--checkpoints_total_limit", 10**6, "--resume_from_checkpoint", "latest"]
        print("+", " ".join(map(str, cmd)), flush=True)
        proc = subprocess.Popen([str(c) for c in cmd], start_new_session=True)
        try:
            while proc.poll() is None:
                time.sleep(10)
                step, median = seconds_per_step(to2v / "metrics.jsonl")
                if median and step * median >= 60 * marks[-1] + 30 and step % CHECKPOINT_EVERY > 5:
                    break
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
        (run_dir / "trained").touch()
    _, median = seconds_per_step(to2v / "metrics.jsonl")
    kept = {int(p.name.split("-")[1]) for p in (to2v / "checkpoints").glob("checkpoint-*") if p.name.split("-")[1].isdigit()}
    summary = {"width": args.width, "layers": args.layers, "patch": args.patch, "vae": args.vae, "seconds_per_step": median, "marks": {}}
    for minutes in marks:
        step = max(s for s in kept if s * median <= 60 * minutes)
        model = run_dir / f"m{minutes}" / "to2v"
        if not (model / "model" / "model_index.json").exists():
            run(*LAUNCH, ROOT / "training" / "train_to2v.py", "--config", RECIPE / "to2v.yaml", "--latents_dir", out / f"latents{args.vae}",
                "--model", init, "--output_dir", model, "--max_train_steps", step,
                "--resume_from_checkpoint", to2v / "checkpoints" / f"checkpoint-{step}")
        summary["marks"][str(minutes)] = {"step": step, "loss": loss_before(to2v / "metrics.jsonl", step)}
    (run_dir / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def adopt(args):
    """A recipe run's exported To2V models as the marks of a study run (OUT/NAME), scored like the others by `score`."""
    recipe, run_dir = Path(args.recipe).resolve(), Path(args.out) / args.name
    metrics = recipe / "to2v" / "metrics.jsonl"
    _, median = seconds_per_step(metrics)
    denoiser = json.loads((recipe / "init" / "model" / "transformer" / "config.json").read_text())
    vae = json.loads((recipe / "init" / "model" / "vae" / "config.json").read_text())
    summary = {"width": denoiser["num_attention_heads"] * denoiser["attention_head_dim"], "layers": denoiser["num_layers"],
               "patch": denoiser["patch_size"][-1], "vae": str(vae["scale_factor_spatial"]),
               "seconds_per_step": median, "latents": str(recipe / "latents"), "marks": {}}
    for item in args.model:
        step, model = item.split("=", 1)
        minutes = round(int(step) * median / 60)
        mark = run_dir / f"m{minutes}" / "to2v"
        mark.mkdir(parents=True, exist_ok=True)
        if not (mark / "model").exists():
            (mark / "model").symlink_to(Path(model).resolve())
        summary["marks"][str(minutes)] = {"step": int(step), "loss": loss_before(metrics, int(step))}
    (run_dir / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


def score(args):
    from t2v.shapes.bench import evaluate_folder
    from t2v.shapes.evaluate import METRICS, held_out_prompts

    out = Path(args.out)
    run_dir = out / args.name
    train_json = json.loads((run_dir / "train.json").read_text())
    prompts = held_out_prompts(args.prompts, 1)
    scores = {}
    for minutes in train_json["marks"]:
        mark = run_dir / f"m{minutes}"
        if not (mark / "codec" / "model" / "model_index.json").exists():
            latents = train_json.get("latents") or out / f"latents{train_json['vae']}"
            run(sys.executable, ROOT / "training" / "fit_codec.py", "--latents_dir", latents,
                "--model", mark / "to2v" / "model", "--output_dir", mark / "codec")
        folder = mark / "true_codec"
        if rendered(folder) != prompts:  # written last, so a mark rendered to the end is only scored again
            render_mark(mark / "codec" / "model", prompts, args.seconds, folder)
        summary = evaluate_folder(folder).summary
        scores[minutes] = {**train_json["marks"][minutes], **{m: getattr(summary, m) for m in METRICS}}
        print(minutes, json.dumps(scores[minutes]), flush=True)
    (run_dir / "scores.json").write_text(json.dumps({**train_json, "scores": scores}, indent=2) + "\n")


def rendered(folder: Path) -> list[str] | None:
    """The prompts of a mark's videos, if its metadata.jsonl was written (after the last video)."""
    from t2v.shapes.bench import read_metadata

    return [entry["text"] for entry in read_metadata(folder)] if (folder / "metadata.jsonl").is_file() else None


def render_mark(model: Path, prompts: list[str], seconds: float, folder: Path):
    """Each prompt's video, seed 0, FIFO, from the true video's tokens through the fitted codec."""
    from t2v import T2VPipeline
    from t2v.shapes.evaluate import generate, through_codec, true_tokens

    pipe = T2VPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    num_frames = pipe.num_frames_for(None, seconds, float(pipe.config.fps))
    lines, plan = [], pipe.plan
    folder.mkdir(exist_ok=True)
    (folder / "metadata.jsonl").unlink(missing_ok=True)  # until every video is made again
    for p, prompt in enumerate(prompts):
        tokens = through_codec(pipe, true_tokens(pipe, prompt, num_frames, 0))
        pipe.plan = lambda *_, _tokens=tokens, **__: _tokens
        generate(pipe, prompt, seconds, 0, "fifo", folder / f"{p:02d}.mp4")
        pipe.plan = plan
        lines.append(json.dumps({"file_name": f"{p:02d}.mp4", "text": prompt, "seed": 0}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")


def denoiser_parameters(model: Path) -> int:
    """Parameters of an exported model's denoiser, from its safetensors headers."""
    from safetensors import safe_open

    total = 0
    for file in (model / "transformer").glob("*.safetensors"):
        with safe_open(file, framework="pt") as weights:
            total += sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())
    return total


def table(args):
    """Every scored run under OUT as the research log's table: quality against minutes, steps and parameters."""
    metrics = ("color_accuracy", "shape_accuracy", "motion_accuracy", "identity_consistency", "jumps_per_minute", "flicker")
    print("| denoiser | VAE | minutes | steps | loss (last 200) | color | shape | motion | identity | jumps / min | flicker |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scores in sorted(Path(args.out).glob("*/scores.json")):
        run = json.loads(scores.read_text())
        for minutes, row in sorted(run["scores"].items(), key=lambda item: int(item[0])):
            model = scores.parent / f"m{minutes}" / "to2v" / "model"
            size = denoiser_parameters(model) if model.is_dir() else 0
            patch = run.get("patch", 2)
            name = f"width {run['width']}, {run['layers']} blocks, {patch}×{patch} patches" + (f" ({size / 1e6:.2f} M)" if size else "")
            loss = "" if row.get("loss") is None else f"{row['loss']:.3f}"
            cells = " | ".join(f"{row[m]:.1f}" if m == "jumps_per_minute" else f"{row[m]:.3f}" for m in metrics)
            print(f"| {name} | {run['vae']}× | {minutes} | {row['step']} | {loss} | {cells} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True)
    p.add_argument("--vae4", action="store_true", help="also train the 4x VAE and cache its latents")
    p = sub.add_parser("train")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--vae", choices=["8", "4"], default="8")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--patch", type=int, choices=[2, 4], default=2, help="the side of the denoiser's square patches")
    p.add_argument("--minutes", type=int, nargs="+", default=[15, 30, 45])
    p = sub.add_parser("table")
    p.add_argument("--out", required=True)
    p = sub.add_parser("adopt")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--recipe", required=True, help="a run.sh output folder (init/, latents/, to2v/metrics.jsonl)")
    p.add_argument("--model", nargs="+", required=True, help="STEP=FOLDER: a To2V model the run exported at STEP")
    p = sub.add_parser("score")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    {"prepare": prepare, "train": train, "adopt": adopt, "score": score, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
