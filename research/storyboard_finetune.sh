#!/usr/bin/env bash
# Does captioning To2V's training windows with their part's prompt (a storyboard) make changes come on time?
#
#   bash research/storyboard_finetune.sh OUT LATENTS [STEPS]
#
# LATENTS: a latent cache of the recipe's data, made with the packaged model's VAE and holding the
# storyboards (t2v data shapes --out D --num 240 --seconds 8 --max-seconds 64 --seed 0, then
# python training/cache_latents.py --data_dir D --model t2v/default_model --output_dir LATENTS).
# The packaged model's denoiser is fine-tuned twice for STEPS steps (default 5000), with its text
# encoder and video tokenizer frozen so that its planner and codec still fit: once with every window
# reading the whole caption (--part_prompts 0, the control for the extra steps) and once with half of
# a storyboard video's windows reading their part's prompt (--part_prompts 0.5).
# Each result, and the packaged model, is scored on 20 validation prompts (prompt seed 1, 30 s,
# seed 0), with and without the storyboard at inference. docs/research_log.md, "Storyboards".
set -euo pipefail
OUT="$1"; LATENTS="$2"; STEPS="${3:-5000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
for share in 0 0.5; do
  accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
    "$ROOT/training/train_to2v.py" --model "$ROOT/t2v/default_model" --latents_dir "$LATENTS" --output_dir "$OUT/share$share" \
    --freeze_tokenizer --part_prompts "$share" --train_batch_size 16 --learning_rate 2.0e-4 --lr_warmup_steps 100 \
    --use_ema --ema_decay 0.999 --max_train_steps "$STEPS" --checkpointing_steps 1000 --checkpoints_total_limit 1 \
    --resume_from_checkpoint latest
done
for model in share0 share0.5 packaged; do
  folder="$OUT/$model/model"; [ "$model" = packaged ] && folder="$ROOT/t2v/default_model"
  python "$ROOT/benchmarks/shapes_ablation.py" --model "$folder" --out "$OUT/eval-$model" --seconds 30 \
    --prompts 20 --seeds 1 --prompt-seed 1 --configs "planner+fifo" "planner+fifo whole caption"
done
