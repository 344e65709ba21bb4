# Sourced by the recipes' run.sh: `stage NAME COMMAND...` runs COMMAND unless OUT/NAME/model (or OUT/NAME/done)
# exists, so that running a recipe again goes on where it stopped, and adds the seconds it took to OUT/NAME.seconds
# (a resumed stage adds to its time). Needs OUT.
stage() {
  local name="$1"; shift
  if [ -e "$OUT/$name/model/model_index.json" ] || [ -e "$OUT/$name/done" ]; then
    echo "== $name: already done"; return
  fi
  echo "== $name"
  local start=$(date +%s)
  "$@"
  local before=$(cat "$OUT/$name.seconds" 2>/dev/null || echo 0)
  echo $(( before + $(date +%s) - start )) > "$OUT/$name.seconds"
}
