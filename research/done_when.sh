#!/usr/bin/env bash
# A long-standing check of the Shapes model: `t2v generate "a yellow triangle moves in a circle" --seconds 20` with
# seeds 0, 1 and 2, each scored by ShapesBench (`t2v eval shapes`), as a user would run them.
#
#   bash research/done_when.sh OUT [MODEL]     (default MODEL: the packaged model)
#
# Writes OUT/seed{0,1,2}.mp4, OUT/metadata.jsonl and OUT/scores.json, and prints the summary.
set -euo pipefail
OUT="$1"; MODEL="${2:-}"
PROMPT="a yellow triangle moves in a circle"
mkdir -p "$OUT"
: > "$OUT/metadata.jsonl"
for seed in 0 1 2; do
  t2v generate "$PROMPT" --seconds 20 --seed "$seed" -o "$OUT/seed$seed.mp4" ${MODEL:+--model "$MODEL"}
  echo "{\"file_name\": \"seed$seed.mp4\", \"text\": \"$PROMPT\"}" >> "$OUT/metadata.jsonl"
done
t2v eval shapes --videos "$OUT" --json "$OUT/scores.json"
python - "$OUT/scores.json" <<'PY'
import json, sys
for video in json.load(open(sys.argv[1]))["videos"]:
    s = video["score"]
    print(f"{video['file_name']}: color {s['color_accuracy']:.2f}, shape {s['shape_accuracy']:.2f}, "
          f"motion {s['motion_accuracy']:.2f}, identity {s['identity_consistency']:.2f}, {s['jumps_per_minute']:.0f} jumps a minute")
PY
