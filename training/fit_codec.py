"""Stage 3: the token codec, fitted (not trained): PCA of the tokenizer's tokens to a few channels, then normalised.

    python training/fit_codec.py --latents_dir CACHE --model TO2V_MODEL --output_dir OUT

The tokens of every clip are gathered in t2v/training/codec.py and `TokenCodec.fit` (t2v/models/token_codec.py)
computes the projection the planner works in. There is no loss to change.
"""

from t2v.training.args import run
from t2v.training.codec import main

if __name__ == "__main__":
    run(main)
