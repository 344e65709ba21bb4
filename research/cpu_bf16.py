"""Seconds per To2V training step on a CPU in float32 and under bfloat16 autocast, for the full profile's denoiser.

    python research/cpu_bf16.py [--steps 15] [--rounds 2] [--batch 16]

A CPU with AVX-512 BF16 (this one: AMD EPYC) can multiply bfloat16 matrices at twice float32's rate,
so `--mixed_precision bf16` might shorten the Shapes recipe's longest stage. This times forward +
backward + AdamW of the denoiser that `python -m t2v.shapes.model --width 192 --vae-compression 4
--patch 4` builds (3.05 M parameters, 4x4 patches) on random windows of its training shape (batch
16, 5 latent frames of 16x16, one timestep per latent frame, 8 tokens per frame through
`FrameTokenAttnProcessor`; `research/denoiser_width.py`'s step), once in float32 and once under
`torch.autocast("cpu", torch.bfloat16)`, a copy of the model each, interleaved over `--rounds` in
one process. Prints bfloat16's seconds per step relative to float32's.
"""

import argparse
import copy

import torch
from denoiser_width import TOKENS_PER_FRAME, step_fn

from t2v.benchmark_utils import describe_run, timed_interleaved
from t2v.models.denoiser import set_frame_token_attention
from t2v.shapes.model import TEXT_CONTEXT, build_default_pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=15, help="steps timed per precision and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    describe_run()
    model = build_default_pipeline(width=192, vae_compression=4, patch=4).transformer
    set_frame_token_attention(model, TOKENS_PER_FRAME, TEXT_CONTEXT)
    steps = {}
    for name, bf16 in (("float32", False), ("bfloat16 autocast", True)):
        torch.manual_seed(1)  # the same random windows for both copies
        steps[name] = step_fn(copy.deepcopy(model), args.batch, size=16, bf16=bf16)
    best = timed_interleaved(steps, args.rounds, args.steps)
    print(f"\nparameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
    print("| precision | s / step, relative to float32 |\n| --- | --- |")
    for name in steps:
        print(f"| {name} | {best[name] / best['float32']:.2f} |")


if __name__ == "__main__":
    main()
