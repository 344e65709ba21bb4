"""Stage 1: the 3D causal VAE (diffusers' AutoencoderKLWan), or its decoder alone (--decoder_only).

    accelerate launch training/train_vae.py --config training/recipes/shapes/vae.yaml --data_dir DATA --output_dir OUT

Where each part of the stage lives (t2v/training/vae.py):
- the model and the loss: `VAETraining.forward` — L1 + L2 reconstruction, weighted up where the frame has detail
  (`detail_mask`), plus `kl_weight` × KL; edit that method to change the loss;
- the data: a `VideoFolderDataset` of clips (`video_dataset` in t2v/training/common.py), cropped around the
  object by `detail_crops` when --crop is given;
- the loop (accelerate, EMA, checkpoints, resume): t2v/training/loop.py, shared by every stage.
"""

from t2v.training.args import run
from t2v.training.vae import main

if __name__ == "__main__":
    run(main)
