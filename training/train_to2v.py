"""Stage 2: the video tokenizer and the To2V denoiser (a Wan DiT), trained together (TokensGen).

    accelerate launch training/train_to2v.py --config training/recipes/shapes/to2v.yaml --latents_dir CACHE --output_dir OUT

Where each part of the stage lives (t2v/training/to2v.py):
- the model and the loss: `To2VTraining.forward` — the tokenizer condenses the window's clips into tokens, text
  and tokens are dropped now and then for guidance, and `flow_matching_loss` (t2v/training/common.py) compares the
  denoiser's velocity with the true one; edit those two to change the loss;
- what trains: `set_trainable` (--train_mode full | lora | tokens_only, --train_text_encoder, --freeze_tokenizer);
- the data: windows of cached latents (`LatentWindows`, t2v/training/latents.py; half of them at FIFO's diagonal
  noise levels, `fifo_sigmas`), or clips of a video folder encoded at every step (--data_dir);
- the loop (accelerate, EMA, checkpoints, resume): t2v/training/loop.py, shared by every stage.
"""

from t2v.training.args import run
from t2v.training.to2v import main

if __name__ == "__main__":
    run(main)
