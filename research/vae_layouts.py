"""Which VAE layout learns the Shapes world faster from scratch: Wan 2.1's or Wan 2.2's residual one.

    python research/vae_layouts.py [--steps 200] [--batch 4] [--every 50]

Both are diffusers' AutoencoderKLWan with 8× spatial and 4× temporal compression and 8 latent
channels, about 2.6 M parameters each, trained by t2v's VAE loss (`VAETraining`, detail weight 10)
with AdamW at 5e-4 on the same stream of rendered 9-frame Shapes clips (whole 64×64 frames), from
the same seed:

- `wan2.1`: the layout of the early default models (base 16, multipliers 1-2-4-4).
- `wan2.2-residual`: 2×2 patches folded into channels, average-pool shortcuts around every down-
  and up-sampling block (`is_residual`), base 32, multipliers 1-2-2: the default model's layout now.

Prints, every `--every` steps, the PSNR of 8 held-out 17-frame clips' reconstructions over all pixels
and over the object's pixels, and the seconds per step of each layout as a ratio measured in this run.
"""

import argparse
import time

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from vae_ceiling import psnr_and_object_psnr, reconstruct

from t2v.benchmark_utils import describe_run
from t2v.shapes.model import build_default_pipeline
from t2v.shapes.world import render_video, sample_caption
from t2v.training.vae import VAETraining

WAN21 = dict(base_dim=16, z_dim=8, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True])


def clips(count: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """`count` rendered clips of random captions: uint8 (count, frames, 64, 64, 3)."""
    return np.stack([render_video(sample_caption(rng), frames, int(rng.integers(1 << 30))) for _ in range(count)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    describe_run()

    layouts = {"wan2.1": WAN21, "wan2.2-residual": build_default_pipeline().vae.config}
    test = clips(8, 17, np.random.default_rng(123)).astype(np.float32) / 255.0
    seconds, curves = {}, {}
    for name, config in layouts.items():
        torch.manual_seed(0)
        vae = AutoencoderKLWan.from_config(config)  # fresh weights from one seed
        model = VAETraining(vae, kl_weight=1e-6, detail_weight=10.0)
        optimizer = torch.optim.AdamW(vae.parameters(), lr=5e-4, weight_decay=0.0)
        rng, seconds[name], curves[name] = np.random.default_rng(0), 0.0, []
        for step in range(1, args.steps + 1):
            batch = {"video": torch.from_numpy(clips(args.batch, 9, rng)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1}
            start = time.perf_counter()
            loss = model(batch, None)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            optimizer.step()
            seconds[name] += time.perf_counter() - start
            if step % args.every == 0:
                recon = np.stack([reconstruct(vae, clip) for clip in test])
                curves[name].append((step, *psnr_and_object_psnr(test, recon)))
                print(f"{name} step {step}: PSNR {curves[name][-1][1]:.1f} dB, object {curves[name][-1][2]:.1f} dB", flush=True)
        print(f"{name}: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f} M parameters", flush=True)

    print("\n| step | " + " | ".join(f"{n} PSNR / object PSNR (dB)" for n in layouts) + " |")
    print("| --- |" + " --- |" * len(layouts))
    for rows in zip(*curves.values()):
        print(f"| {rows[0][0]} | " + " | ".join(f"{r[1]:.1f} / {r[2]:.1f}" for r in rows) + " |")
    base = seconds["wan2.1"]
    print("\nseconds per step, relative to wan2.1: " + ", ".join(f"{n} {s / base:.2f}" for n, s in seconds.items()))


if __name__ == "__main__":
    main()
