"""train_vae: see t2v/training/vae.py. Run with `accelerate launch training/train_vae.py --help`."""

from t2v.training.vae import main

if __name__ == "__main__":
    main()
