# The full profile, the packaged model's recipe: the whole recipe at the size the Shapes world needs, about 6 hours on
# a 2-core CPU (5.8 hours of stages for the packaged model; training/recipes/shapes/last_run.json). The VAE compresses
# 4x in space (its ceiling on shape is 0.999, against about 0.6 at 8x); the denoiser is 192 wide with 4x4 patches
# (3.05 M parameters, and as many tokens as the 8x VAE gives 2x2 patches); To2V trains its 32000 steps (to2v.yaml) in
# two parts of one to two hours each. The scaling study in docs/research_log.md ("A scaling study of the denoiser")
# is why.
MODEL_ARGS=(--width 192 --vae-compression 4 --patch 4)
DATA_ARGS=(--num 240 --seconds 8 --max-seconds 64 --seed 0)
declare -A STEPS=([to2v]="16000 32000")
TRAIN_ARGS=(--checkpointing_steps 500)
SAMPLING_SHIFT=1  # the stages train at shift 3; shift 1 samples best (research/sampling_sweep.py on the validation prompts)
