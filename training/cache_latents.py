"""cache_latents: see t2v/training/cache.py. Run with `accelerate launch training/cache_latents.py --help`."""

from t2v.training.cache import main

if __name__ == "__main__":
    main()
