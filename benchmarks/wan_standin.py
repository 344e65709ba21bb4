"""CPU memory of a Wan2.1-T2V-1.3B-shaped stand-in: generating from a stock Wan folder, converting it, generating from that.

Peak memory on a CPU of what a user of a Wan2.1-T2V-1.3B folder runs, measured on a random-weight stand-in built once
by `t2v.benchmark_utils.random_wan_folder` and kept in `--folder`: Wan2.1-T2V-1.3B's DiT (30 layers, 12 heads x 128,
FFN 8960, 4096-channel text, patch 1x2x2, as diffusers' config), Wan2.1's `AutoencoderKLWan` (diffusers' default), the
scheduler Wan ships (UniPC, flow prediction, shift 3.0) and a UMT5 text encoder of UMT5-XXL's width (d_model 4096,
d_ff 10240, 64 heads x 64) with 2 of its 24 layers and a vocabulary of the prompt's words instead of 256,384. Every
component is saved in bfloat16. Each row is a fresh process whose peak RSS is read from `os.wait4` (ru_maxrss):

- generate from the Wan folder, at `--seconds` and `--long-seconds`: `T2VPipeline.from_pretrained(folder,
  dtype=torch.bfloat16, fps=..., clip_frames=..., height=..., width=...)` and `pipe.stream(...)` with the defaults of
  `t2v generate` (FIFO, guidance 5), which is what `t2v generate PROMPT --model FOLDER --dtype bfloat16 --seconds S
  --steps N ...` runs (the planner off for a Wan folder). A script instead of the command because the command has no
  flag for the window length (Wan2.1's 81 frames otherwise); the frames are consumed, not written to a file.
- convert: `python -m t2v.pipelines.wan_base FOLDER OUT`, as it is (dtype auto: the tokenizer, text encoder and VAE
  copied as stored, the DiT loaded in its stored bfloat16 to make the denoiser and the planner).
- generate from the converted folder at `--seconds`, the same way (its planner on, `--steps` planner steps).

The table gives each row's peak RSS; the same plus the bfloat16 weights that the stand-in's text encoder lacks against
UMT5-XXL (arithmetic: its parameters counted on the meta device; nothing added for the conversion, which copies the
text encoder as files); whether each is under 16 GiB; and the wall time of the process, loading included. Below it:
the ratio of the long video's peak to the short one's. Memory, not quality, is measured: random weights, a small
video (64x112, 16 fps, windows of 17 frames: 5 latent frames of 28 tokens), 4 steps. Building the folder should take
about 8 GiB, once (the weights are made in float32, then cast; the settings line gives its peak). `--tiny`: the same
at toy sizes (2 layers of width 64, a 1-layer text encoder of width 32, the smallest VAE, 32x32, 8 fps, windows of 9
frames, 2 steps, 2 and 4 s, one thread, in a temporary folder) for the tests.

    python benchmarks/wan_standin.py
    python benchmarks/wan_standin.py --tiny
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from t2v.benchmark_utils import ROOT, UMT5_XXL, WAN21_13B, describe_run

PROMPT = "a cat walks along the beach at sunset"
GOAL_GIB = 16
UMT5_XXL_VOCABULARY = 256384
# the stand-in: Wan2.1-T2V-1.3B's DiT and VAE, UMT5-XXL's width with 2 of its layers; the video is small for the CPU
FULL = dict(model=dict(**WAN21_13B, text_layers=2, text_width=UMT5_XXL["text_width"], text_heads=UMT5_XXL["text_heads"],
                       text_ffn=UMT5_XXL["text_ffn"], vae=None),
            height=64, width=112, fps=16, clip_frames=17, steps=4, seconds=10, long_seconds=60, threads=None)
TINY = dict(model=dict(layers=2, dim=64, heads=2, ffn=64 * 8960 // 1536, text_layers=1, text_width=32, text_heads=2, text_ffn=None,
                       vae=dict(base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1)),
            height=32, width=32, fps=8, clip_frames=9, steps=2, seconds=2, long_seconds=4, threads=1)


def log(message: str) -> None:
    print(f"[wan_standin {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiet_libraries() -> None:
    import diffusers
    import transformers

    for library in (diffusers, transformers):  # progress bars and dtype notes: not for the table
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()


def build(args) -> None:
    """Child: write the stand-in folder, complete or not at all."""
    import torch

    from t2v.benchmark_utils import random_wan_folder
    from t2v.pipelines.pipeline_t2v import write_folder

    quiet_libraries()
    model = (TINY if args.tiny else FULL)["model"]
    Path(args.folder).parent.mkdir(parents=True, exist_ok=True)
    write_folder(args.folder, lambda folder: random_wan_folder(folder, **model, words=PROMPT.split(), dtype=torch.bfloat16))


def generate(args) -> None:
    """Child: what `t2v generate --dtype bfloat16` runs, with the window length set; print the frames and times as JSON."""
    import torch

    from t2v import T2VPipeline

    quiet_libraries()
    start = time.perf_counter()
    pipe = T2VPipeline.from_pretrained(args.model, dtype=torch.bfloat16, fps=args.fps, clip_frames=args.clip_frames,
                                       height=args.height, width=args.width)
    pipe.set_progress_bar_config(disable=True)
    loading = time.perf_counter() - start
    stream = pipe.stream(PROMPT, seconds=args.seconds, num_inference_steps=args.steps, planner_steps=args.steps,
                         guidance_scale=args.guidance, generator=torch.Generator("cpu").manual_seed(0))
    frames = sum(chunk.shape[1] for chunk in stream)
    print(json.dumps(dict(frames=frames, loading=loading)))


def measure(command: list[str], env: dict) -> dict:
    """Run `command` in a fresh process: its wall seconds, its peak RSS in GiB (wait4's ru_maxrss) and its last line."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not the maximum over all children
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if process.returncode:
            raise SystemExit(f"error: {' '.join(map(str, command))} failed (exit {process.returncode}):\n{err.read()[-3000:]}")
        lines = out.read().strip().splitlines()
    return dict(peak=usage.ru_maxrss / 2**20, seconds=seconds, last=lines[-1] if lines else "")


def check_folder(folder: Path, model: dict) -> None:
    """Stop in one sentence when a kept folder holds another model than the one asked for."""
    want = dict(num_layers=model["layers"], num_attention_heads=model["heads"], attention_head_dim=model["dim"] // model["heads"],
                ffn_dim=model["ffn"], text_dim=model["text_width"])
    have = json.loads((folder / "transformer" / "config.json").read_text())
    text = json.loads((folder / "text_encoder" / "config.json").read_text())
    if any(have.get(k) != v for k, v in want.items()) or text["num_layers"] != model["text_layers"]:
        raise SystemExit(f"error: {folder} holds another Wan than this run's ({have['num_layers']} layers, width "
                         f"{have['num_attention_heads'] * have['attention_head_dim']}); name another --folder or remove it.")


def parameters(folder: Path) -> tuple[int, float | None]:
    """The DiT's parameters, and the GiB of bfloat16 weights that the folder's text encoder lacks against
    UMT5-XXL (its 24 layers and 256,384 words), counted on the meta device; None when it is not of UMT5-XXL's width."""
    import torch
    from diffusers import WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    def count(model) -> int:
        return sum(p.numel() for p in model.parameters())

    with torch.device("meta"):  # not accelerate's init_empty_weights, which unties UMT5's embeddings: counted twice
        dit = count(WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(folder, subfolder="transformer")))
        ours = UMT5Config.from_pretrained(folder, subfolder="text_encoder")
        if ours.d_model != UMT5_XXL["text_width"]:
            return dit, None
        full = UMT5Config(**{**ours.to_dict(), "vocab_size": UMT5_XXL_VOCABULARY, "num_layers": UMT5_XXL["text_layers"],
                             "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128})
        missing = count(UMT5EncoderModel(full)) - count(UMT5EncoderModel(ours))
    return dit, missing * 2 / 2**30


def report(args, rows: list, dit: int, missing: float | None, built: str, total: float) -> None:
    """Print the heading, the device, date and command, the settings, the table and the ratio."""
    model = (TINY if args.tiny else FULL)["model"]
    window = (args.clip_frames - 1) // 4 + 1
    tokens = (args.height // 16) * (args.width // 16)
    text = f"{model['text_layers']}-layer UMT5 text encoder of width {model['text_width']}"
    if missing is not None:
        text = (f"UMT5 text encoder of UMT5-XXL's width (d_model {model['text_width']}, d_ff {model['text_ffn']}, {model['text_heads']} "
                f"heads x {model['text_width'] // model['text_heads']}) with only {model['text_layers']} of its 24 layers and a "
                f"vocabulary of the prompt's words, not 256,384: {missing:.2f} GiB of bfloat16 weights fewer than UMT5-XXL's")
    vae = "Wan2.1's AutoencoderKLWan" if model["vae"] is None else "the smallest AutoencoderKLWan"
    size = f"{dit / 1e9:.2f} B" if dit >= 1e8 else f"{dit / 1e6:.2f} M"
    print("\n### CPU memory of a Wan2.1-T2V-1.3B-shaped stand-in\n")
    describe_run()
    print(f"random-weight Wan folder in diffusers' format, every component saved in bfloat16: DiT {model['layers']} layers, "
          f"{model['heads']} heads x {model['dim'] // model['heads']}, FFN {model['ffn']}, patch 1x2x2 ({size} parameters); "
          f"{vae}; {text}; UniPC scheduler, flow prediction, shift 3.0; {built}. Generation: T2VPipeline.from_pretrained(folder, "
          f"dtype=torch.bfloat16, fps={args.fps}, clip_frames={args.clip_frames}, height={args.height}, width={args.width}) and "
          f"pipe.stream(...), what t2v generate --dtype bfloat16 runs (the command has no flag for the window); {args.height}x"
          f"{args.width}, {args.fps} fps, windows of {args.clip_frames} frames ({window} latent frames of {tokens} tokens), "
          f"{args.steps} steps (and {args.steps} planner steps), guidance {args.guidance:g}, FIFO; frames consumed, not written. "
          f"Conversion: python -m t2v.pipelines.wan_base FOLDER OUT (dtype auto). Each row a fresh process, its peak RSS from "
          f"wait4 (ru_maxrss); wall time includes loading; whole run {total / 60:.1f} minutes\n")
    print(f"| step | frames | peak RSS (GiB) | with UMT5-XXL's text encoder (GiB, arithmetic) | under {GOAL_GIB} GiB: measured / with "
          "UMT5-XXL | wall time (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, frames, r, loads_text in rows:
        full = r["peak"] + (missing if loads_text else 0.0) if missing is not None else None
        goal = f"{'yes' if r['peak'] < GOAL_GIB else 'no'} / " + ("-" if full is None else "yes" if full < GOAL_GIB else "no")
        shown = "-" if full is None else f"{full:.2f}"
        print(f"| {name} | {frames} | {r['peak']:.2f} | {shown} | {goal} | {r['seconds']:.1f} |", flush=True)
    short, long = rows[0][2]["peak"], rows[1][2]["peak"]
    print(f"\nGenerating from the Wan folder, {args.long_seconds:g} s against {args.seconds:g} s: peak RSS {long / short:.3f}x "
          f"({long:.2f} / {short:.2f} GiB).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="everything at toy sizes, in a temporary folder (for the tests)")
    parser.add_argument("--folder", help="where the stand-in Wan folder is kept (default runs/wan_standin/wan; --tiny: a temporary one)")
    parser.add_argument("--seconds", type=float, help="the video of the conversion's comparison and the ratio's base (default 10)")
    parser.add_argument("--long-seconds", type=float, help="the long video, generated from the Wan folder (default 60)")
    parser.add_argument("--height", type=int, help="pixels, a multiple of 16 (default 64)")
    parser.add_argument("--width", type=int, help="pixels, a multiple of 16 (default 112)")
    parser.add_argument("--fps", type=int, help="frames per second (default 16, Wan2.1's)")
    parser.add_argument("--clip-frames", type=int, help="frames of one window, 4k + 1 (default 17; Wan2.1's is 81)")
    parser.add_argument("--steps", type=int, help="denoising steps, and planner steps for the converted folder (default 4)")
    parser.add_argument("--guidance", type=float, default=5.0, help="guidance scale (default 5, t2v generate's)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every row (default: torch's own; --tiny: 1)")
    parser.add_argument("--child", choices=["build", "generate"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in (TINY if args.tiny else FULL).items():
        if key != "model" and getattr(args, key) is None:
            setattr(args, key, value)
    if args.child == "build":
        return build(args)
    if args.child == "generate":
        return generate(args)
    if args.clip_frames % 4 != 1 or args.height % 16 or args.width % 16:
        parser.error("--clip-frames must be 4k + 1, --height and --width multiples of 16.")

    start = time.perf_counter()
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    common = ["--height", str(args.height), "--width", str(args.width), "--fps", str(args.fps), "--clip-frames", str(args.clip_frames),
              "--steps", str(args.steps), "--guidance", str(args.guidance), *(["--tiny"] if args.tiny else [])]
    script = [sys.executable, os.path.abspath(__file__)]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder or (Path(scratch, "wan") if args.tiny else ROOT / "runs" / "wan_standin" / "wan")).resolve()
        if (folder / "model_index.json").exists():
            check_folder(folder, (TINY if args.tiny else FULL)["model"])
            built = f"folder {folder.name} kept from an earlier run"
        else:
            log(f"building the stand-in Wan folder in {folder}")
            r = measure([*script, "--child", "build", "--folder", str(folder), *common], env)
            built = f"folder built in {r['seconds']:.0f} s, peak RSS {r['peak']:.2f} GiB"
        dit, missing = parameters(folder)

        def generation(model: Path, seconds: float) -> tuple[int, dict]:
            r = measure([*script, "--child", "generate", "--model", str(model), "--seconds", str(seconds), *common], env)
            return json.loads(r["last"])["frames"], r

        rows = []
        for seconds in (args.seconds, args.long_seconds):
            log(f"generating {seconds:g} s from the Wan folder")
            frames, r = generation(folder, seconds)
            rows.append((f"generate from the Wan folder, {seconds:g} s", frames, r, True))
        # the converted folder goes beside the Wan folder (about 2.5 times its size on disk), and is removed at the end
        with tempfile.TemporaryDirectory(dir=folder.parent) as converted:
            log("converting the Wan folder")
            r = measure([sys.executable, "-m", "t2v.pipelines.wan_base", str(folder), str(Path(converted, "t2v"))], env)
            rows.append(("convert: python -m t2v.pipelines.wan_base (dtype auto)", "-", r, False))
            log(f"generating {args.seconds:g} s from the converted folder")
            frames, r = generation(Path(converted, "t2v"), args.seconds)
            rows.append((f"generate from the converted folder, {args.seconds:g} s", frames, r, True))
    report(args, rows, dit, missing, built, time.perf_counter() - start)


if __name__ == "__main__":
    main()
