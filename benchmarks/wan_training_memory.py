"""CPU memory of every stage of the Wan-base training recipe on a Wan2.1-T2V-1.3B-shaped stand-in, and an estimate for one GPU.

Measured: the stages of training/recipes/wan/run.sh (with its to2v.yaml and planner.yaml) on the random-weight stand-in
that benchmarks/wan_standin.py builds, in the same folder (`--folder`, default runs/wan_standin/wan: built once for both
scripts; every component bfloat16), at a small size: 64x112, 16 fps, 17-frame clips (5 latent frames of 140 tokens), on
4 Shapes videos of 11 s (`t2v.shapes.folder.write_shapes_folder`; planner.yaml's 8 clips each). Each row is a fresh
process whose peak RSS is read from `os.wait4` (ru_maxrss), as in wan_standin.py:

- convert: `python -m t2v.pipelines.wan_base WAN OUT --fps 16 --clip_frames 17 --height 64 --width 112`;
- latents: `training/cache_latents.py --batch_size 1`, and a second cache at 128x224 (`--height 128 --width 224`);
- load and export: a process that loads the converted folder as every training script does (`load_base`), writes it
  again as they export their model at the end (`pipe.export`), and stops: the runtime, the weights as stored and what
  loading and saving them takes, without a training step;
- To2V: `training/train_to2v.py --config to2v.yaml`, tokens_only with and without gradient checkpointing, LoRA
  (`--train_mode lora`, rank 16) and full (`--train_mode full`);
- codec: `training/fit_codec.py` on the first To2V row's model, as the recipe fits it (on the converted model, of the
  same shapes, when that row was skipped);
- planner: `training/train_planner.py --config planner.yaml` on the codec's model.

Training rows run `python SCRIPT` (what `accelerate launch --num_processes 1` runs) with `--latents_dir --mixed_precision
bf16 --train_batch_size 1 --gradient_accumulation_steps 1 --max_train_steps 3 --checkpointing_steps 3 --skip_validation`
and `--gradient_checkpointing` (the default above 100 M parameters) but in the row without it, each twice: as above,
and at a second token count, the slope's (below): To2V on the 128x224 cache (the training scripts train at their
cache's size: 560 tokens a sample), the planner with half the clips (`--max_clips 4`). For them the table also
gives the trained parameters (counted from the folder's safetensors headers as `set_trainable` picks them, and checked
against the checkpoint), the size of the last checkpoint (bytes of its files), whether the export is stored in the
base's dtypes (bfloat16), the second run's peak, and below it whether the planner's model (the recipe's finished model;
the first To2V row's when the planner is skipped) loads with `T2VPipeline.from_pretrained` and the LoRA adapter with
`pipe.load_lora_weights`. A training row is not run when its lower bound, 16 bytes per trained parameter (float32
weight, gradient, two Adam moments) plus the other weights as stored, exceeds the memory available (MemAvailable, or
`--memory-limit-gib`): its row says "skipped: needs at least X GiB".

Estimated, not measured: one 80 GB GPU (74.5 GiB) at Wan2.1's 480x832, 81 frames, per training row (sizes in bytes)

    GPU = 2 x frozen parameters + 16 x trained parameters + S x N_gpu
    S   = (peak RSS at N_2 - peak RSS at N_1) / (N_2 - N_1), at least 0

where frozen parameters are all the folder's others, with the text encoder at UMT5-XXL's full size (the stand-in has 2
of its 24 layers and a small vocabulary; the recipe validates, which puts every component on the GPU), and N counts the
tokens of one sample: latent frames x (height / 16) x (width / 16) of a clip for To2V (N_1 = 140 at 64x112, N_2 = 560
at 128x224, N_gpu = 32,760 at 480x832x81), clips x the token grid for the planner (8 and 4 clips; N_gpu: planner.yaml's
max_clips, as the grid does not depend on the frame size). S, the activation bytes per token, is the slope of the peak
between the row's two runs, which differ only in the tokens of a sample: what both hold alike (the runtime, the
weights, the optimizer, autograd's and the data's fixed buffers, the checkpoint's bytes) cancels out of it. It assumes
activation memory linear in tokens, as with memory-efficient (flash) attention on a GPU; were the CPU's SDPA to hold an
N x N attention matrix, b x N^2 bytes, that part would enter S as b x (N_1 + N_2) per token (an overestimate for the GPU). S is read
from a difference of two peaks, so the allocator's noise weighs on it, and a negative slope reads 0; a skipped row
takes tokens_only-with-checkpointing's S. At --tiny's sizes the estimate means nothing (a few tokens, scaled by
thousands).

`--tiny`: the same rows at toy sizes (wan_standin's tiny model, 32x32 and 64x64, 8 fps, 9-frame clips, 2 videos of 3 s,
2 steps, one thread, in a temporary folder) for the tests.

    python benchmarks/wan_training_memory.py
    python benchmarks/wan_training_memory.py --tiny
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import wan_standin as standin
import yaml

from t2v.benchmark_utils import ROOT, describe_run

RECIPE = ROOT / "training" / "recipes" / "wan"
GPU = dict(height=480, width=832, clip_frames=81)  # Wan2.1's training size
GPU_GIB = 80e9 / 2**30
LORA_RANK = 16  # train_to2v.py's default
# large: the second size of the To2V rows (their activations' slope); 11 s: planner.yaml's 8 clips
FULL = dict(height=64, width=112, large=(128, 224), fps=16, clip_frames=17, videos=4, seconds=11, steps=3, threads=None)
TINY = dict(height=32, width=32, large=(64, 64), fps=8, clip_frames=9, videos=2, seconds=3, steps=2, threads=1)
# the To2V rows: name, --train_mode, gradient checkpointing
TO2V = [("To2V tokens_only, gradient checkpointing", "tokens_only", "--gradient_checkpointing"),
        ("To2V tokens_only, no gradient checkpointing", "tokens_only", "--no_gradient_checkpointing"),
        (f"To2V LoRA (rank {LORA_RANK})", "lora", "--gradient_checkpointing"),
        ("To2V full", "full", "--gradient_checkpointing")]
BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def log(message: str) -> None:
    print(f"[wan_training_memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load(args) -> None:
    """Child: load a model folder as the training scripts do, export it to `--out` as they do at the end, and stop."""
    import t2v.training.to2v  # noqa: F401  (what a training script imports)
    from t2v.training.common import load_base

    load_base(args.model).export(args.out)


def check(args) -> None:
    """Child: whether `--model` loads with T2VPipeline.from_pretrained (in its stored dtypes, as load_base loads it) and the
    LoRA adapter `--lora` on `--base` with pipe.load_lora_weights; print both as JSON."""
    from t2v.training.common import load_base

    def loads(fn) -> str:
        try:
            fn()
            return "yes"
        except Exception as err:  # noqa: BLE001  (reported in the table)
            return f"no: {' '.join(str(err).split())[:200]}"

    answer = dict(model=loads(lambda: load_base(args.model)))
    if args.lora:
        answer["lora"] = loads(lambda: load_base(args.base).load_lora_weights(args.lora))
    print(json.dumps(answer))


def available_gib() -> float:
    """MemAvailable of /proc/meminfo (the physical memory where there is none), in GiB."""
    try:
        line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemAvailable:"))
        return int(line.split()[1]) / 2**20
    except (OSError, StopIteration):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30


def stored(folder: Path) -> dict[str, dict[str, tuple[tuple, int]]]:
    """{component: {tensor: (shape, bytes)}} of a model folder (or a checkpoint, component ""), from the safetensors headers."""
    from safetensors import safe_open

    found = {}
    for file in sorted([*folder.glob("*.safetensors"), *folder.glob("*/*.safetensors")]):
        with safe_open(file, framework="pt") as weights:
            for key in weights.keys():
                tensor = weights.get_slice(key)
                shape = tuple(tensor.get_shape())
                component = "" if file.parent == folder else file.parent.name
                found.setdefault(component, {})[key] = (shape, math.prod(shape) * BYTES[tensor.get_dtype()])
    return found


def held_parameters(checkpoint: Path) -> int:
    """The parameters a training checkpoint holds (its model.safetensors), from the headers."""
    return sum(math.prod(shape) for shape, _ in stored(checkpoint)[""].values())


def trained(weights: dict, mode: str) -> tuple[int, int, int]:
    """The parameters a row trains, as `set_trainable` (or the planner stage) picks them: (count, how many of them the folder
    stores, their bytes there); LoRA's adapters are new: rank x (inputs + outputs) of every targeted linear layer."""
    from t2v.training.to2v import IMAGE_BRANCH, LORA_TARGETS

    dit = weights["transformer"]
    if mode == "lora":
        targeted = [shape for key, (shape, _) in dit.items() if len(shape) == 2 and key.endswith(".weight")
                    and any(key[:-7] == t or key[:-7].endswith("." + t) for t in LORA_TARGETS)]
        return sum(LORA_RANK * (rows + columns) for rows, columns in targeted), 0, 0
    if mode == "planner":
        chosen = list(weights["planner"].values())
    else:
        branch = [v for key, v in dit.items() if mode == "full" or any(part in key for part in IMAGE_BRANCH)]
        chosen = [*weights["video_tokenizer"].values(), *branch]
    count = sum(math.prod(shape) for shape, _ in chosen)
    return count, count, sum(size for _, size in chosen)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def same_dtypes(base: Path, export: Path) -> str:
    """Whether every component of `export` (a model folder, or a LoRA adapter of the denoiser) is stored in its base's dtype."""
    from t2v.checks import stored_dtype
    from t2v.training.common import stored_dtypes

    want = stored_dtypes(base)
    have = stored_dtypes(export) if (export / "model_index.json").exists() else {"transformer": stored_dtype(export)}
    name = {component: str(dtype).replace("torch.", "") for component, dtype in have.items()}
    wrong = [f"{component} {name[component]}" for component in have if have[component] != want.get(component)]
    return f"no: {', '.join(wrong)}" if wrong else f"yes ({', '.join(sorted(set(name.values())))})"


class Recipe:
    """The table's rows, each stage run in a fresh process (`wan_standin.measure`) with its files in `work`."""

    def __init__(self, args, env: dict, work: Path, limit: float):
        self.args, self.env, self.work, self.limit = args, env, work, limit
        self.rows = []

    def run(self, name: str, *commands: list) -> dict:
        """A row: the first command's peak RSS and wall time, and the second's peak RSS (`second`) when there is one."""
        log(name)
        first, *second = [standin.measure([str(part) for part in command], self.env) for command in commands]
        self.rows.append(dict(name=name, **first, **({"second": second[0]["peak"]} if second else {})))
        return self.rows[-1]

    def train(self, name: str, stage: str, model: Path, mode: str, options: list, sizes: list, gpu_tokens: int, keep: bool) -> dict:
        """A training row, run twice (`sizes`: each run's latent cache, further options and tokens per sample; `gpu_tokens`: at
        the GPU's size) unless its lower bound exceeds the limit. The second run's files, the first's checkpoints and, unless
        `keep`, its export are removed once measured, to spare the disk."""
        weights = stored(model)
        count, stored_params, stored_bytes = trained(weights, mode)
        params = sum(math.prod(shape) for component in weights.values() for shape, _ in component.values())
        bound = (sum(size for component in weights.values() for _, size in component.values()) - stored_bytes + 16 * count) / 2**30
        tokens = [n for *_, n in sizes]
        facts = dict(name=name, trained=count, params=params, stored_params=stored_params, bound=bound, tokens=tokens,
                     gpu_tokens=gpu_tokens)
        if bound > self.limit:
            log(f"{name}: skipped, needs at least {bound:.2f} GiB")
            self.rows.append(dict(facts, skipped=True))
            return self.rows[-1]
        (out, second), steps = [self.work / f"row{len(self.rows)}-{i}" for i in (1, 2)], self.args.steps
        r = self.run(name, *[[sys.executable, ROOT / "training" / f"train_{stage}.py", "--config", RECIPE / f"{stage}.yaml",
                              "--latents_dir", latents, "--model", model, "--output_dir", where, "--mixed_precision", "bf16",
                              "--train_batch_size", 1, "--gradient_accumulation_steps", 1, "--max_train_steps", steps,
                              "--checkpointing_steps", steps, "--skip_validation", *options, *more]
                             for where, (latents, more, _) in zip((out, second), sizes)])
        checkpoint = out / "checkpoints" / f"checkpoint-{steps}"
        saved = held_parameters(checkpoint)
        if saved != count:
            raise SystemExit(f"error: {name}'s checkpoint holds {saved:,} trained parameters, this script counted {count:,}: "
                             "`trained` no longer follows set_trainable.")
        export = out / ("lora" if mode == "lora" else "model")
        r.update(facts, checkpoint=folder_bytes(checkpoint), dtypes=same_dtypes(model, export), export=export,
                 slope=max(0.0, (r["second"] - r["peak"]) / (tokens[1] - tokens[0])))  # GiB per token
        shutil.rmtree(second)
        shutil.rmtree(out / "checkpoints")
        if not keep:
            shutil.rmtree(export)
        return r

    def measure(self, wan: Path) -> dict:
        """Run every row on the stand-in folder `wan`; return what loading the exports gave ({} when none was made)."""
        from t2v.shapes.folder import write_shapes_folder

        args, work, python, script = self.args, self.work, sys.executable, os.path.abspath(__file__)
        videos, latents, large, init = work / "videos", work / "latents", work / "latents_large", work / "init" / "model"
        write_shapes_folder(videos, num_videos=args.videos, seconds=args.seconds, seed=0)
        self.run("convert: python -m t2v.pipelines.wan_base", [python, "-m", "t2v.pipelines.wan_base", wan, init, "--fps", args.fps,
                 "--clip_frames", args.clip_frames, "--height", args.height, "--width", args.width])
        cache = [python, ROOT / "training" / "cache_latents.py", "--data_dir", videos, "--model", init, "--batch_size", 1]
        self.run("latents: training/cache_latents.py", [*cache, "--output_dir", latents],
                 [*cache, "--output_dir", large, "--height", args.large[0], "--width", args.large[1]])
        self.run("load and export the converted folder (no training step)",
                 [python, script, "--child", "load", "--model", init, "--out", work / "exported"])
        shutil.rmtree(work / "exported")

        def tokens(height: int, width: int, clip_frames: int = args.clip_frames) -> int:  # of a To2V sample
            return (1 + (clip_frames - 1) // 4) * (height // 16) * (width // 16)

        sizes = [(latents, [], tokens(args.height, args.width)), (large, [], tokens(*args.large))]
        to2v = [self.train(name, "to2v", init, mode, ["--train_mode", mode, switch], sizes, tokens(**GPU), keep=i == 0 or mode == "lora")
                for i, (name, mode, switch) in enumerate(TO2V)]
        # the codec on the To2V model, as in the recipe (on the converted one, of the same shapes, if that row was skipped)
        self.run("codec: training/fit_codec.py", [python, ROOT / "training" / "fit_codec.py", "--latents_dir", latents,
                 "--model", to2v[0].get("export", init), "--output_dir", work / "codec"])
        grid = math.prod(json.loads((init / "video_tokenizer" / "config.json").read_text())["grid"])
        max_clips = yaml.safe_load((RECIPE / "planner.yaml").read_text())["max_clips"]
        window = 1 + (args.clip_frames - 1) // 4  # latent frames of a clip
        clips = max(min(shape[1] // window, max_clips) for shape, _ in stored(latents)[""].values())
        sizes = [(latents, [], clips * grid), (latents, ["--max_clips", clips // 2], clips // 2 * grid)]
        planner = self.train("planner: training/train_planner.py", "planner", work / "codec" / "model", "planner",
                             ["--gradient_checkpointing"], sizes, max_clips * grid, keep=True)

        finished, lora = planner if "export" in planner else to2v[0], to2v[2].get("export")
        if "export" not in finished:
            return {}
        log("loading the exports")
        command = [python, script, "--child", "check", "--model", finished["export"]] + (["--lora", lora, "--base", init] if lora else [])
        what = "the planner's model (the recipe's finished one)" if finished is planner else f"the model of {finished['name']}"
        return dict(json.loads(standin.measure([str(part) for part in command], self.env)["last"]), what=what)


def report(args, rows: list, loads: dict, settings: dict, missing: float | None, built: str, total: float) -> None:
    """Print the heading, the device, date and command, the settings, the measured table and the estimate."""
    print("\n### CPU memory of the Wan-base training recipe on a Wan2.1-T2V-1.3B-shaped stand-in\n")
    describe_run()
    model = "tiny" if args.tiny else "Wan2.1-T2V-1.3B's DiT and VAE, a 2-layer UMT5 of UMT5-XXL's width"
    print(f"the stand-in Wan folder of benchmarks/wan_standin.py ({model}, bfloat16; {built}); {args.videos} Shapes videos of "
          f"{args.seconds:g} s; {args.height}x{args.width}, {args.fps} fps, clips of {args.clip_frames} frames; training: python "
          f"SCRIPT --config training/recipes/wan/{{to2v,planner}}.yaml --latents_dir CACHE --mixed_precision bf16 --train_batch_size "
          f"1 --gradient_accumulation_steps 1 --max_train_steps {args.steps} --checkpointing_steps {args.steps} --skip_validation, each "
          f"also run at a second size: To2V on a cache at {args.large[0]}x{args.large[1]}, the planner with half the clips "
          f"(--max_clips); rows not run above {settings['limit']:.2f} GiB ({settings['limit_from']}). Each row a fresh process, its "
          f"peak RSS from wait4 (ru_maxrss); wall time includes loading; whole run {total / 60:.1f} minutes\n")
    print("| stage | peak RSS (GiB) | wall time (s) | trained parameters | last checkpoint (MiB) | export in the base's dtypes | "
          "lower bound (GiB, arithmetic) | second size: peak RSS (GiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        peak = f"skipped: needs at least {r['bound']:.2f} GiB" if r.get("skipped") else f"{r['peak']:.2f}"
        cells = [r["name"], peak, "-" if r.get("skipped") else f"{r['seconds']:.1f}",
                 f"{r['trained']:,}" if "trained" in r else "-",
                 f"{r['checkpoint'] / 2**20:.2f}" if "checkpoint" in r else "-", r.get("dtypes", "-"),
                 f"{r['bound']:.2f}" if "bound" in r else "-", f"{r['second']:.2f}" if "second" in r else "-"]
        print(f"| {' | '.join(cells)} |", flush=True)
    if loads:
        print(f"\nLoading the exports: {loads['what']} with T2VPipeline.from_pretrained: {loads['model']}; the LoRA adapter on the "
              f"converted model with pipe.load_lora_weights: {loads.get('lora', 'not trained')}.")
    else:
        print("\nLoading the exports: no training row ran.")

    reference = next(r for r in rows if r["name"] == TO2V[0][0]).get("slope")  # a skipped row's slope
    text = "" if missing is None else f", the text encoder at UMT5-XXL's size ({missing:.2f} GiB of bfloat16 weights above the stand-in's)"
    print(f"\n### ESTIMATE (arithmetic, not measured): one 80 GB GPU at {GPU['height']}x{GPU['width']}, {GPU['clip_frames']} frames\n")
    print(f"GPU = 2 B x frozen parameters{text} + 16 B x trained parameters (float32 weights, gradients, Adam) + S x N_gpu; "
          "S = (peak RSS at N_2 - peak RSS at N_1) / (N_2 - N_1), at least 0: the activations' bytes per token, from the row's two "
          "runs above (N = tokens per sample; a skipped row: tokens_only-with-checkpointing's S). Assumes activation memory linear "
          "in tokens, as with memory-efficient (flash) attention on a GPU; the CPU's SDPA may differ. Fits: under 80 GB (74.5 GiB)."
          + (" --tiny: toy sizes, a few tokens scaled by thousands; these figures mean nothing." if args.tiny else "") + "\n")
    print("| stage | frozen weights, bf16 (GiB) | trained: weights, gradients, Adam, fp32 (GiB) | tokens: N_1, N_2 -> N_gpu "
          "| S (KiB per token) | activations on the GPU (GiB) | total (GiB) | fits 80 GB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "trained" not in r:
            continue
        frozen = (r["params"] - r["stored_params"]) * 2 / 2**30 + (missing or 0.0)
        weights = r["trained"] * 16 / 2**30
        slope = reference if r.get("skipped") else r["slope"]
        total = None if slope is None else frozen + weights + slope * r["gpu_tokens"]
        cells = [r["name"], f"{frozen:.2f}", f"{weights:.2f}", f"{r['tokens'][0]:,}, {r['tokens'][1]:,} -> {r['gpu_tokens']:,}",
                 "-" if slope is None else f"{slope * 2**20:.2f}" + (" (tokens_only's)" if r.get("skipped") else ""),
                 "-" if slope is None else f"{slope * r['gpu_tokens']:.2f}", "-" if total is None else f"{total:.2f}",
                 "-" if total is None else "yes" if total < GPU_GIB else "no"]
        print(f"| {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="everything at toy sizes, in a temporary folder (for the tests)")
    parser.add_argument("--folder", help="where the stand-in Wan folder is kept (default runs/wan_standin/wan, wan_standin.py's; "
                                         "--tiny: a temporary one)")
    parser.add_argument("--memory-limit-gib", type=float, help="skip a training row whose lower bound exceeds this (default: MemAvailable)")
    parser.add_argument("--steps", type=int, help="optimizer steps of every training row (default 3)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every row (default: torch's own; --tiny: 1)")
    parser.add_argument("--child", choices=["load", "check"], help=argparse.SUPPRESS)
    for hidden in ("--model", "--lora", "--base", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.child == "load":
        return load(args)
    if args.child == "check":
        return check(args)
    if args.steps < 1:
        parser.error("--steps must be at least 1.")

    start = time.perf_counter()
    limit = args.memory_limit_gib or available_gib()
    settings = dict(limit=limit, limit_from="--memory-limit-gib" if args.memory_limit_gib else "MemAvailable at the start")
    env = dict(os.environ, HF_HUB_OFFLINE="1", **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    with tempfile.TemporaryDirectory() as scratch:
        wan = Path(args.folder or (Path(scratch, "wan") if args.tiny else ROOT / "runs" / "wan_standin" / "wan")).resolve()
        if (wan / "model_index.json").exists():
            standin.check_folder(wan, (standin.TINY if args.tiny else standin.FULL)["model"])
            built = f"folder {wan.name} kept from an earlier run"
        else:  # built as wan_standin.py builds it, for both scripts
            log(f"building the stand-in Wan folder in {wan}")
            command = [sys.executable, standin.__file__, "--child", "build", "--folder", str(wan)] + (["--tiny"] if args.tiny else [])
            r = standin.measure(command, env)
            built = f"folder built in {r['seconds']:.0f} s, peak RSS {r['peak']:.2f} GiB"
        _, missing = standin.parameters(wan)
        # the work goes beside the Wan folder (a few exports of about the converted folder's size), removed at the end
        with tempfile.TemporaryDirectory(dir=wan.parent) as work:
            recipe = Recipe(args, env, Path(work), limit)
            loads = recipe.measure(wan)
    report(args, recipe.rows, loads, settings, missing, built, time.perf_counter() - start)


if __name__ == "__main__":
    main()
