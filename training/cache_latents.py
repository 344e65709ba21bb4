"""Between the VAE and the later stages: every video of a folder encoded once, whole, into a latent cache.

    python training/cache_latents.py --data_dir DATA --model VAE_MODEL --output_dir CACHE

The cache (t2v/training/latents.py, `cache_latents`) is what `train_to2v.py`, `fit_codec.py` and
`train_planner.py` read with --latents_dir, so the VAE's encoder runs once instead of at every step.
"""

from t2v.training.args import run
from t2v.training.cache import main

if __name__ == "__main__":
    run(main)
