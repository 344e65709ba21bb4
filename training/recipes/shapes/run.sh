#!/usr/bin/env bash
# The Shapes-world recipe: every stage of the default model, trained from scratch on generated data.
#
#   bash training/recipes/shapes/run.sh [--profile quick|full|FILE] [OUT_DIR]      (default: quick, runs/shapes)
#
# Stages: data -> VAE (32×32 crops of 9-frame, then of 65-frame clips) -> latent cache -> text encoder + tokenizer + To2V -> codec
# -> planner -> refine (the denoiser alone, at a lower learning rate, with the text encoder and tokenizer frozen) -> decoder
# (the VAE's decoder alone, its encoder and so the latents frozen), all
# starting from freshly initialised weights (`python -m t2v.shapes.model`), never from the packaged model.
# Every stage writes OUT_DIR/<stage>/ (metrics.jsonl, checkpoints, model/); a finished stage is skipped
# and a stage stopped midway resumes from its last checkpoint, so running the command again after a
# stop goes on where it stopped. The finished model is OUT_DIR/model, and OUT_DIR/recipe.json records
# the command, the commit, the time each stage took and its last loss.
#
# The YAMLs hold each stage's settings; a profile (profiles/NAME.sh, or any FILE in that form) says the
# model's size, the data, and how many steps each stage trains, in parts that each fit a working
# session (a stage stopped in any part resumes there). `full` is the packaged model's recipe (about 6 hours;
# BENCHMARKS.md, "The Shapes recipe, stage by stage"); `quick` trains the same model with fewer steps in under 90
# minutes, to reproduce the method.
# Pass `accelerate launch` options through LAUNCH (e.g. LAUNCH="--num_processes 2") to train on GPUs.
# `accelerate launch` gives each process one CPU thread unless OMP_NUM_THREADS says otherwise, so the
# recipe sets it to every core (on 2 cores: To2V 1.45x, the first VAE stage 1.36x faster than on one
# thread; research/train_threads.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
PROFILE=quick
if [ "${1:-}" = "--profile" ]; then
  PROFILE="${2:?run.sh: --profile needs a profile name or file}"; shift 2
fi
PROFILE_FILE="$PROFILE"
[ -f "$PROFILE_FILE" ] || PROFILE_FILE="$HERE/profiles/$PROFILE.sh"
if [ ! -f "$PROFILE_FILE" ]; then
  echo "run.sh: error: no profile '$PROFILE' (the profiles are $(cd "$HERE/profiles" && ls | sed 's/\.sh$//' | paste -sd, -), or give a profile file)." >&2; exit 2
fi
# A profile sets MODEL_ARGS (python -m t2v.shapes.model), DATA_ARGS (t2v data shapes), STEPS (per stage: the
# step each part ends at; a stage it leaves out trains its YAML's max_train_steps), TRAIN_ARGS (every training stage)
# and SAMPLING_SHIFT (the shift the finished model samples at; unset: the training shift, 3).
MODEL_ARGS=(); DATA_ARGS=(--num 240 --seconds 8 --max-seconds 64 --seed 0); declare -A STEPS=(); TRAIN_ARGS=(); SAMPLING_SHIFT=""
source "$PROFILE_FILE"
OUT="${1:-runs/shapes}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RUN=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no ${LAUNCH:-})
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
T0=$(date +%s)

source "$HERE/../stage.sh"  # stage NAME COMMAND...: skipped once done, timed

# train NAME SCRIPT CONFIG OPTIONS...: one training stage in OUT/NAME, in the parts STEPS[NAME] lists.
train() {
  local name="$1" script="$2" config="$3"; shift 3
  local parts=(${STEPS[$name]:-""}) i=0
  for steps in "${parts[@]}"; do
    i=$((i + 1))
    stage "$name$([ ${#parts[@]} -gt 1 ] && echo ".$i")" "${RUN[@]}" "$ROOT/training/$script" --config "$HERE/$config" \
      --output_dir "$OUT/$name" --resume_from_checkpoint latest ${steps:+--max_train_steps "$steps"} "${TRAIN_ARGS[@]}" "$@"
  done
}

stage data t2v data shapes --out "$OUT/data/train" "${DATA_ARGS[@]}"
stage init python -m t2v.shapes.model "$OUT/init/model" "${MODEL_ARGS[@]}"
train vae train_vae.py vae.yaml --model "$OUT/init/model" --data_dir "$OUT/data/train"
train vae_video train_vae.py vae_video.yaml --model "$OUT/vae/model" --data_dir "$OUT/data/train"
stage latents python "$ROOT/training/cache_latents.py" --data_dir "$OUT/data/train" --model "$OUT/vae_video/model" --output_dir "$OUT/latents"
train to2v train_to2v.py to2v.yaml --latents_dir "$OUT/latents" --model "$OUT/vae_video/model"
stage codec python "$ROOT/training/fit_codec.py" --latents_dir "$OUT/latents" --model "$OUT/to2v/model" --output_dir "$OUT/codec"
train planner train_planner.py planner.yaml --latents_dir "$OUT/latents" --model "$OUT/codec/model"
train refine train_to2v.py refine.yaml --latents_dir "$OUT/latents" --model "$OUT/planner/model"
train decoder train_vae.py decoder.yaml --model "$OUT/refine/model" --data_dir "$OUT/data/train"

python -m t2v.training.recipe --out "$OUT" --started "$T0" --command "bash training/recipes/shapes/run.sh --profile $PROFILE" \
  ${SAMPLING_SHIFT:+--sampling_shift "$SAMPLING_SHIFT"} \
  --data "the Shapes world v1 (docs/shapes_world.md), \`t2v data shapes ${DATA_ARGS[*]}\` (held-out color-shape pairs left out), every stage from scratch"
