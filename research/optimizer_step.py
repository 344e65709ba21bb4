"""Seconds per To2V training step with AdamW's three implementations: single-tensor, foreach and fused.

    python research/optimizer_step.py [--steps 20] [--rounds 3] [--batch 16]

On a CPU, `torch.optim.AdamW` falls back to its single-tensor loop (foreach and fused are its
defaults on CUDA only), and a profile of the Shapes recipe's To2V step puts 7% of it there
(docs/research_log.md, "The denoiser's width and a step's cost"). This times forward + backward + AdamW of
the packaged model's denoiser (`research/denoiser_width.py`'s configuration and random windows),
one copy of the model per implementation, interleaved over `--rounds` in one process, and checks
that the three give the same weights after the same steps (to float rounding). Prints each
implementation's seconds per step relative to the single-tensor loop's.
"""

import argparse
import copy

import torch
from denoiser_width import CONFIGS, build, step_fn

from t2v.benchmark_utils import describe_run, timed_interleaved

IMPLEMENTATIONS = {"single-tensor": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps timed per implementation and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    describe_run()
    torch.manual_seed(0)
    base = build(*CONFIGS["width 64, 4 blocks (packaged)"])
    models = {name: copy.deepcopy(base) for name in IMPLEMENTATIONS}
    steps = {}
    for name, options in IMPLEMENTATIONS.items():
        torch.manual_seed(1)  # the same random windows for every copy
        steps[name] = step_fn(models[name], args.batch, **options)
    best = timed_interleaved(steps, args.rounds, args.steps)
    reference = dict(models["single-tensor"].named_parameters())
    print("\n| AdamW | s / step, relative | largest weight difference to single-tensor |")
    print("| --- | --- | --- |")
    for name in IMPLEMENTATIONS:
        diff = max((p - reference[k]).abs().max().item() for k, p in models[name].named_parameters())
        print(f"| {name} | {best[name] / best['single-tensor']:.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
