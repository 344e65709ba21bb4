# The quick profile: the full profile's model (a 192-wide denoiser with 4x4 patches on the 4x VAE) and data, every
# stage shorter, so that anyone can reproduce the method on a 2-core CPU in under 90 minutes (75 minutes of stages on
# 2026-12-07; recipe.json beside the model records the time). Its model scores far below the packaged one (color
# 0.59, motion 0.20 and 62 jumps a minute on the card's trained pairs; BENCHMARKS.md, "The Shapes recipe, stage by
# stage").
MODEL_ARGS=(--width 192 --vae-compression 4 --patch 4)
DATA_ARGS=(--num 240 --seconds 8 --max-seconds 64 --seed 0)
declare -A STEPS=([vae]=800 [vae_video]=120 [to2v]=4500 [planner]=1500 [refine]=500 [decoder]=100)
TRAIN_ARGS=(--checkpointing_steps 500)
SAMPLING_SHIFT=1  # the stages train at shift 3; shift 1 samples best (research/sampling_sweep.py on the validation prompts)
