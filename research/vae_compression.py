"""The default model with a VAE of 4× spatial compression instead of 8×, freshly initialised, for the recipe's VAE stages.

    python research/vae_compression.py OUT_DIR

The packaged VAE folds 2×2 pixels into channels and then halves height and width twice (8×): at
64×64 a latent frame is 8×8, and the Shapes world's objects (14 px) fall on about two latent cells,
so the decoder rounds their corners (docs/research_log.md, "The decoder alone"). This one is the same Wan 2.2
residual layout (`AutoencoderKLWan`, `is_residual=True`, base width 32, 4× temporal compression, 8
channels) without the fold, so a latent frame is 16×16. The denoiser's patches grow from 2×2 to 4×4
to keep its token count (4×4 per latent frame). Everything else is `build_default_pipeline`'s, from
the same seed. Train it with the recipe's VAE stages (`training/recipes/shapes/vae.yaml`, then
`vae_video.yaml`) and measure it with `research/vae_ceiling.py` (docs/research_log.md, "A VAE of 4×
spatial compression").
"""

import argparse

import torch
from diffusers import WanTransformer3DModel

from t2v.shapes.model import build_default_pipeline, build_vae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir")
    args = parser.parse_args()
    pipe = build_default_pipeline(0)
    torch.manual_seed(0)
    pipe.vae = build_vae(spatial_compression=4)
    config = dict(pipe.transformer.config)
    config["patch_size"] = (1, 4, 4)
    pipe.transformer = WanTransformer3DModel.from_config(config)
    pipe.save_pretrained(args.output_dir)
    print(f"saved the default model with a 4x-spatial VAE to {args.output_dir}")


if __name__ == "__main__":
    main()
