"""The recipe's refine stage with other FIFO noise levels: what share of windows sits on FIFO's diagonal.

`training/train_to2v.py` trains half of its windows at FIFO's diagonal noise levels (each frame one
step of an S-step schedule cleaner than the next, S drawn from 10 to 50) and half at one level for
all frames (`t2v.training.common.fifo_sigmas`). At inference every window after the first is on the
diagonal of the pipeline's 25 steps. This runs the To2V script with `diagonal_share` and the range
of S replaced, so that a refine on the inference windows alone can be measured against the recipe's:

    python research/refine_diagonal.py SHARE S_MIN S_MAX [train_to2v.py options]
    python research/refine_diagonal.py 1.0 25 25 --config training/recipes/shapes/refine.yaml \\
        --latents_dir runs/latents --model t2v/default_model --output_dir runs/refine_diag

(`0.5 10 50` is the script's own setting.) The options after the three numbers are train_to2v.py's.
"""

import functools
import sys

from t2v.training import common, to2v


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    try:
        share, low, high = float(argv[0]), int(argv[1]), int(argv[2])
    except ValueError:
        raise SystemExit("usage: refine_diagonal.py SHARE S_MIN S_MAX [train_to2v.py options]: SHARE a number, S_MIN and S_MAX integers") from None
    if not 0.0 <= share <= 1.0 or not 1 <= low <= high:
        raise SystemExit(f"SHARE must be in [0, 1] and 1 <= S_MIN <= S_MAX, got {share:g}, {low}, {high}.")
    to2v.fifo_sigmas = functools.partial(common.fifo_sigmas, diagonal_share=share, steps=(low, high))
    to2v.main(argv[3:])


if __name__ == "__main__":
    main(sys.argv[1:])
