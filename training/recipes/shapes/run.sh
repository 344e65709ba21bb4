#!/usr/bin/env bash
# The Shapes-world recipe: every stage of the default model, trained from scratch on generated data.
#
#   bash training/recipes/shapes/run.sh [OUT_DIR]        (default OUT_DIR: runs/shapes)
#
# Stages: data -> VAE (32×32 crops of 9-frame, then of 65-frame clips) -> latent cache -> text encoder + tokenizer + To2V -> codec
# -> planner -> refine (the denoiser alone, at a lower learning rate, with the text encoder and tokenizer frozen) -> decoder
# (the VAE's decoder alone, its encoder and so the latents frozen), all
# starting from freshly initialised weights (`python -m t2v.shapes.model`), never from the packaged model.
# Every stage writes OUT_DIR/<stage>/ (metrics.jsonl, checkpoints, model/); a stage whose model/ exists
# is skipped and a stage stopped midway resumes from its last checkpoint, so running the command again
# after a stop goes on where it stopped. The finished model is OUT_DIR/model, and
# OUT_DIR/recipe.json records the command, the commit, the time each stage took and its last loss.
# Step counts are sized for about 90 minutes on a 2-core CPU (BENCHMARKS.md, "The Shapes recipe, stage by stage"); pass
# `accelerate launch` options through LAUNCH (e.g. LAUNCH="--num_processes 2") to train on GPUs.
# `accelerate launch` gives each process one CPU thread unless OMP_NUM_THREADS says otherwise, so the
# recipe sets it to every core (on 2 cores: To2V 1.45x, the first VAE stage 1.36x faster than on one
# thread; research/train_threads.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${1:-runs/shapes}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RUN=(accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no ${LAUNCH:-})
RESUME=(--resume_from_checkpoint latest)  # a stage stopped midway goes on from its last checkpoint
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
T0=$(date +%s)

source "$HERE/../stage.sh"  # stage NAME COMMAND...: skipped once done, timed

stage data bash -c "t2v data shapes --out '$OUT/data/train' --num 240 --seconds 8 --max-seconds 64 --seed 0 && touch '$OUT/data/done'"
stage init python -m t2v.shapes.model "$OUT/init/model"
stage vae "${RUN[@]}" "$ROOT/training/train_vae.py" --config "$HERE/vae.yaml" --model "$OUT/init/model" --data_dir "$OUT/data/train" --output_dir "$OUT/vae" "${RESUME[@]}"
stage vae_video "${RUN[@]}" "$ROOT/training/train_vae.py" --config "$HERE/vae_video.yaml" --model "$OUT/vae/model" --data_dir "$OUT/data/train" --output_dir "$OUT/vae_video" "${RESUME[@]}"
stage latents bash -c "python '$ROOT/training/cache_latents.py' --data_dir '$OUT/data/train' --model '$OUT/vae_video/model' --output_dir '$OUT/latents' && touch '$OUT/latents/done'"
stage to2v "${RUN[@]}" "$ROOT/training/train_to2v.py" --config "$HERE/to2v.yaml" --latents_dir "$OUT/latents" --model "$OUT/vae_video/model" --output_dir "$OUT/to2v" "${RESUME[@]}"
stage codec python "$ROOT/training/fit_codec.py" --latents_dir "$OUT/latents" --model "$OUT/to2v/model" --output_dir "$OUT/codec"
stage planner "${RUN[@]}" "$ROOT/training/train_planner.py" --config "$HERE/planner.yaml" --latents_dir "$OUT/latents" --model "$OUT/codec/model" --output_dir "$OUT/planner" "${RESUME[@]}"
stage refine "${RUN[@]}" "$ROOT/training/train_to2v.py" --config "$HERE/refine.yaml" --latents_dir "$OUT/latents" --model "$OUT/planner/model" --output_dir "$OUT/refine" "${RESUME[@]}"
stage decoder "${RUN[@]}" "$ROOT/training/train_vae.py" --config "$HERE/decoder.yaml" --model "$OUT/refine/model" --data_dir "$OUT/data/train" --output_dir "$OUT/decoder" "${RESUME[@]}"

python -m t2v.training.recipe --out "$OUT" --started "$T0" --command "bash training/recipes/shapes/run.sh" \
  --data "the Shapes world v1 (docs/shapes_world.md), generated videos of 8-64 s, held-out color-shape pairs left out, every stage from scratch"
