"""Stage 4: the planner (T2To), a Wan DiT generating every clip's condensed tokens in one go (TokensGen).

    accelerate launch training/train_planner.py --config training/recipes/shapes/planner.yaml --latents_dir CACHE --output_dir OUT

Where each part of the stage lives (t2v/training/planner.py):
- the model and the loss: `PlannerTraining.forward` — the frozen tokenizer and codec turn a whole video's clips
  into the planner's token grid, and `flow_matching_loss` (t2v/training/common.py), masked to the video's real
  clips, trains the planner on it; edit those two to change the loss;
- the data: whole cached videos (`LatentPlans`, t2v/training/latents.py), or long samples of a video folder;
- the loop (accelerate, EMA, checkpoints, resume): t2v/training/loop.py, shared by every stage.
"""

from t2v.training.args import run
from t2v.training.planner import main

if __name__ == "__main__":
    run(main)
