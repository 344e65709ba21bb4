#!/usr/bin/env bash
# TokensGen's recipe on a Wan2.1 base: the base frozen, the token stages trained on your videos.
#
#   bash training/recipes/wan/run.sh WAN VIDEOS [OUT_DIR]      (default OUT_DIR: runs/wan)
#
# WAN is a diffusers Wan2.1 text-to-video folder (or a hub id you name); VIDEOS a video folder with a
# metadata.jsonl of {"file_name": ..., "text": ...} lines (training/README.md, "Your own videos").
# Stages: init (the converter: the base plus a zero-started token branch, a new video tokenizer, codec
# and planner) -> latents (the base's VAE encodes every video once) -> to2v (tokens_only: the video
# tokenizer and the DiT's token branch) -> codec (PCA of the tokens) -> planner. Each writes OUT_DIR/<stage>/;
# a finished stage is skipped and a stopped one resumes from its last checkpoint, so running the command
# again goes on where it stopped. The finished model is OUT_DIR/model (OUT_DIR/recipe.json: command,
# commit, time and last loss per stage).
#
# The YAMLs are sized for one 80 GB GPU at Wan2.1's 480×832, 81-frame clips, in bf16 with gradient
# checkpointing; training/README.md says what each stage needs. Pass `accelerate launch` options through
# LAUNCH (e.g. LAUNCH="--num_processes 2" or LAUNCH="--config_file training/accelerate/fsdp.yaml"), or
# replace the launcher with LAUNCHER (on CPUs, where `accelerate launch` starts one process:
# LAUNCHER="torchrun --nproc_per_node 2" with ACCELERATE_USE_CPU=true), converter options through
# CONVERT_ARGS (e.g. "--height 256 --width 448 --clip_frames 33" to train smaller) and options for both
# training stages through TRAIN_ARGS (e.g. "--max_train_steps 500").
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash training/recipes/wan/run.sh WAN VIDEOS [OUT_DIR]" >&2; exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
WAN="$1"
DATA="$2"
OUT="${3:-runs/wan}"
if [ ! -f "$DATA/metadata.jsonl" ] && [ ! -f "$DATA/metadata.csv" ]; then
  echo "run.sh: error: $DATA is not a video folder (it has no metadata.jsonl or metadata.csv)." >&2; exit 2
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [ -n "${LAUNCHER:-}" ]; then
  read -r -a RUN <<< "$LAUNCHER"
else
  RUN=(accelerate launch ${LAUNCH:---num_processes 1 --num_machines 1 --dynamo_backend no})
fi
RESUME=(--resume_from_checkpoint latest)
read -r -a CONVERT <<< "${CONVERT_ARGS:-}"
read -r -a TRAIN <<< "${TRAIN_ARGS:-}"
T0=$(date +%s)

source "$HERE/../stage.sh"  # stage NAME COMMAND...: skipped once done, timed

stage init python -m t2v.pipelines.wan_base "$WAN" "$OUT/init/model" "${CONVERT[@]}"
stage latents python "$ROOT/training/cache_latents.py" --data_dir "$DATA" --model "$OUT/init/model" --output_dir "$OUT/latents" --batch_size 1
stage to2v "${RUN[@]}" "$ROOT/training/train_to2v.py" --config "$HERE/to2v.yaml" --latents_dir "$OUT/latents" --model "$OUT/init/model" --output_dir "$OUT/to2v" "${RESUME[@]}" "${TRAIN[@]}"
stage codec python "$ROOT/training/fit_codec.py" --latents_dir "$OUT/latents" --model "$OUT/to2v/model" --output_dir "$OUT/codec"
stage planner "${RUN[@]}" "$ROOT/training/train_planner.py" --config "$HERE/planner.yaml" --latents_dir "$OUT/latents" --model "$OUT/codec/model" --output_dir "$OUT/planner" "${RESUME[@]}" "${TRAIN[@]}"

python -m t2v.training.recipe --out "$OUT" --started "$T0" --command "bash training/recipes/wan/run.sh" --data_dir "$DATA" \
  --data "a Wan2.1 base ($WAN) with its token stages trained on $DATA"
