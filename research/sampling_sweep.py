"""ShapesBench of one model under different sampling settings: guidance, planner guidance, steps, shift.

    python research/sampling_sweep.py --out runs/sweep [--model DIR] [--seconds 30] [--prompts 10]
        [--seeds 1] [--prompt-seed 1] [--axes guidance_scale shift ...]
        [--set guidance_scale=3 shift=2 ...]

The ablation (`shapes_ablation.py`) scores a model at the pipeline's defaults; this asks whether the
defaults are the model's best. Starting from the defaults (or from `--set`), it changes one setting
at a time over the values in AXES, keeping the others, and renders the same held-out prompts and
seeds with planner + FIFO every time, a caption with changes given as its storyboard, as `t2v
generate` does (the sweep of 2026-12-01 in docs/research_log.md, "Sampling settings", predates storyboards:
every window read the whole caption). Settings:

- `guidance_scale`: the denoiser's classifier-free guidance on the text (pipeline default 5);
- `planner_guidance_scale`: the planner's (default 3);
- `num_inference_steps`: the denoiser's steps, which are also FIFO's queue length (default 25);
- `shift`: the flow-matching schedule's shift (`FlowMatchEulerDiscreteScheduler.shift`, the model's
  scheduler_config.json; 3 in the packaged model), for the planner and the denoiser alike: how many of
  the steps are spent at high noise. A model trained with one shift still sees every noise level in
  training, so another shift at inference is a change of step spacing, not of the model;
- `lookahead`: FIFO's lookahead denoising (windows that overlap by half, about twice the model calls).

Use a validation set (`--prompt-seed 1`, the default here) to choose, and the ablation's own prompts
(`--prompt-seed 0`) only to report the choice. Videos go to OUT/<setting>/ with a metadata.jsonl;
prints one markdown table row per setting and writes OUT/sweep.json.
"""

import argparse
import json
import time
from pathlib import Path

from diffusers import FlowMatchEulerDiscreteScheduler

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import evaluate_folder
from t2v.shapes.evaluate import METRICS, add_prompt_options, held_out_prompts, render_folder, table_cells

AXES = {
    "guidance_scale": [1.0, 3.0, 7.0, 10.0],
    "planner_guidance_scale": [1.0, 5.0, 8.0],
    "num_inference_steps": [15, 40],
    "shift": [1.0, 2.0, 5.0],
    "lookahead": [True],
}


def parse_settings(pairs: list[str]) -> dict:
    settings = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in AXES or not value:
            raise SystemExit(f"--set takes NAME=VALUE with NAME one of {', '.join(AXES)}; got {pair!r}.")
        settings[name] = {"num_inference_steps": int, "lookahead": lambda v: v.lower() in ("1", "true")}.get(name, float)(value)
    return settings


def render(pipe: T2VPipeline, settings: dict, prompts: list[str], seeds: int, seconds: float, folder: Path) -> dict:
    """Planner + FIFO videos of every prompt and seed under `settings`, scored by ShapesBench."""
    scheduler = pipe.scheduler
    kwargs = dict(settings)
    if "shift" in kwargs:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, shift=kwargs.pop("shift"))
    try:
        wall = render_folder(pipe, prompts, seeds, seconds, "fifo", folder, **kwargs)[0]
    finally:
        pipe.scheduler = scheduler
    summary = evaluate_folder(folder).summary
    return {**{m: getattr(summary, m) for m in METRICS}, "realtime_factor": seconds * len(prompts) * seeds / wall,
            "settings": settings, "folder": str(folder)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="where the videos, their metadata and sweep.json go")
    add_prompt_options(parser)
    parser.set_defaults(seconds=30.0, prompts=10, seeds=1, prompt_seed=1)
    parser.add_argument("--axes", nargs="+", default=list(AXES), choices=list(AXES), help="the settings to vary")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="the starting point (default: the pipeline's defaults)")
    args = parser.parse_args()
    base = parse_settings(args.set)
    describe_run()

    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    prompts = held_out_prompts(args.prompts, args.prompt_seed)
    out = Path(args.out)
    runs = [("start", base)] + [(f"{axis}={value:g}", {**base, axis: value})
                                for axis in args.axes for value in AXES[axis] if base.get(axis) != value]
    results = {}
    for name, settings in runs:
        start = time.perf_counter()
        results[name] = render(pipe, settings, prompts, args.seeds, args.seconds, out / name.replace("=", "_"))
        print(f"{name}: done ({time.perf_counter() - start:.0f} s)", flush=True)

    start_name = "start" + (" (" + ", ".join(f"{k}={v:g}" for k, v in base.items()) + ")" if base else " (the defaults)")
    print(f"\n{len(prompts)} held-out prompts (prompt seed {args.prompt_seed}) x {args.seeds} seeds, {args.seconds:g} s each, planner + FIFO\n")
    print("| setting | " + " | ".join(METRICS) + " | real-time factor |")
    print("| --- |" + " --- |" * (len(METRICS) + 1))
    for name, r in results.items():
        print(f"| {start_name if name == 'start' else name} | " + " | ".join(table_cells(r)) + f" | {r['realtime_factor']:.2f} |")
    (out / "sweep.json").write_text(json.dumps({"prompts": prompts, "seeds": args.seeds, "seconds": args.seconds,
                                                "start": base, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
