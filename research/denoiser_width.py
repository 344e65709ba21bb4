"""Seconds per To2V training step against the denoiser's width, depth and batch, on the packaged model's windows.

    python research/denoiser_width.py [--steps 20] [--batch 16 32] [--latent 8 16] [--configs 0 3]

The Shapes recipe's To2V stage is the longest (about 50 of its 81 minutes on a 2-core CPU), and the
packaged denoiser is tiny (4 blocks of width 64): at FIFO windows of 80 tokens its matrices are so
small that a step may cost more in per-operator overhead than in arithmetic, and a wider model may
then cost little more per step. This times forward + backward + AdamW of `WanTransformer3DModel`
configured as `t2v.shapes.model` makes it (patch (1, 2, 2), an image branch for the tokens, text of
32 tokens) on random windows of the packaged model's shape (8 channels, 5 latent frames of 8×8),
one timestep per latent frame (`--latent 16`: the 16×16 latent frames of the 4× VAE, same 2×2 patches), with 2 tokens' worth of per-frame token context (K = 8 per frame),
for each configuration in one process, interleaved over `--rounds` so that a noisy neighbour slows
every row alike. Prints the ratio of each row's seconds per step to the first row's, and the
parameters.
"""

import argparse

import torch
from diffusers import WanTransformer3DModel

from t2v.benchmark_utils import describe_run, timed_interleaved
from t2v.models.denoiser import FrameTokenAttnProcessor, expand_frame_timesteps
from t2v.shapes.model import LATENT_CHANNELS, TEXT_CONTEXT, TEXT_DIM, TOKEN_DIM

CONFIGS = {  # name: (heads, head dim, ffn, layers)
    "width 64, 4 blocks (packaged)": (4, 16, 256, 4),
    "width 128, 4 blocks": (8, 16, 512, 4),
    "width 128, 6 blocks": (8, 16, 512, 6),
    "width 192, 4 blocks": (12, 16, 768, 4),
}
TOKENS_PER_FRAME = 8


def build(heads, head_dim, ffn, layers):
    model = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
                                  image_dim=TOKEN_DIM, added_kv_proj_dim=heads * head_dim, num_attention_heads=heads,
                                  attention_head_dim=head_dim, text_dim=TEXT_DIM, freq_dim=64, ffn_dim=ffn, num_layers=layers)
    for block in model.blocks:
        block.attn2.set_processor(FrameTokenAttnProcessor(TOKENS_PER_FRAME, text_length=TEXT_CONTEXT))
    return model


def step_fn(model, batch, size=8, bf16=False, **adamw):
    """One training step of `model` on fixed random windows of size×size latent frames, under bfloat16 autocast if
    `bf16` (`adamw`: options of torch.optim.AdamW)."""
    frames = 5
    latents = torch.randn(batch, LATENT_CHANNELS, frames, size, size)
    timesteps = expand_frame_timesteps(torch.rand(batch, frames) * 1000, latents.shape, model.config.patch_size)
    text = torch.randn(batch, TEXT_CONTEXT, TEXT_DIM)
    tokens = torch.randn(batch, frames * TOKENS_PER_FRAME, TOKEN_DIM)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, **adamw)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(latents, timesteps, text, encoder_hidden_states_image=tokens, return_dict=False)[0]
        loss = (out.float() - latents).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps timed per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--latent", type=int, nargs="+", default=[8], help="latent frame sizes: 8 (8x VAE), 16 (4x VAE)")
    parser.add_argument("--configs", type=int, nargs="+", default=list(range(len(CONFIGS))), help="rows of CONFIGS to time")
    args = parser.parse_args()
    describe_run()
    torch.manual_seed(0)
    names = [list(CONFIGS)[i] for i in args.configs]
    rows = [(name, size, batch) for size in args.latent for name in names for batch in args.batch]
    models = {name: build(*CONFIGS[name]) for name in names}
    best = timed_interleaved({row: step_fn(models[row[0]], row[2], row[1]) for row in rows}, args.rounds, args.steps)
    first = best[rows[0]]
    print("\n| denoiser | parameters | latent frame | batch | s / step, relative | windows / s, relative |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, size, batch in rows:
        params = sum(p.numel() for p in models[name].parameters()) / 1e6
        rel = best[(name, size, batch)] / first
        print(f"| {name} | {params:.2f} M | {size}×{size} | {batch} | {rel:.2f} | {batch / rows[0][2] / rel:.2f} |")


if __name__ == "__main__":
    main()
