"""Where the jumps fall: a jump's frame index modulo the VAE's temporal compression.

The causal VAE (AutoencoderKLWan) turns latent frame 0 into frame 0 and latent frame k ≥ 1 into
frames 4k−3 … 4k. If jumps land at one phase of that cycle, they come from the latents (consecutive
latent frames that disagree on where the object is, bridged by the decoder inside one latent's
frames); seams between FIFO windows or clips would show up at their own period instead. The videos
are the ablation's default configuration (planner + FIFO) on its held-out prompts and seeds, jumps
as ShapesBench counts them (`VideoScore.jump_frames`).

    python research/jump_phase.py [--model DIR] [--seconds 30] [--prompts 5] [--seeds 2]
"""

import argparse
from collections import Counter

import torch

from t2v import T2VPipeline, default_model_path
from t2v.benchmark_utils import describe_run
from t2v.shapes.bench import score_video
from t2v.shapes.evaluate import add_prompt_options, held_out_prompts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_prompt_options(parser)
    parser.set_defaults(seconds=30.0)
    args = parser.parse_args()
    describe_run()
    pipe = T2VPipeline.from_pretrained(args.model or default_model_path())
    pipe.set_progress_bar_config(disable=True)
    period = pipe.vae.config.scale_factor_temporal
    phases, videos = Counter(), 0
    for prompt in held_out_prompts(args.prompts, args.prompt_seed):
        for seed in range(args.seeds):
            frames = pipe(prompt, seconds=args.seconds, generator=torch.Generator().manual_seed(seed)).frames[0]
            score = score_video(frames, prompt, fps=pipe.config.fps)
            phases.update(j % period for j in score.jump_frames)
            videos += 1
    total = sum(phases.values())
    print(f"\n{videos} videos of {args.seconds:g} s, {total} jumps; latent frame k >= 1 decodes to frames {period}k-{period - 1} ... {period}k\n")
    print("| jump lands on frame index mod", period, "| jumps | share |")
    print("| --- | --- | --- |")
    for phase in range(period):
        print(f"| {phase} | {phases[phase]} | {phases[phase] / max(total, 1):.2f} |")


if __name__ == "__main__":
    main()
