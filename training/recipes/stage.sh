# Sourced by the recipes' run.sh. Needs OUT.
#
# `stage NAME COMMAND...` runs COMMAND unless the stage is done: OUT/NAME.done, OUT/NAME/done or
# OUT/NAME/model exists. Running a recipe again therefore goes on where it stopped. The seconds it took
# are added to OUT/<stage>.seconds, where <stage> is NAME up to its first dot: the parts of one training
# run (to2v.1, to2v.2, ...) add up to to2v's time, and a resumed stage adds to its own.
stage() {
  local name="$1"; shift
  if [ -e "$OUT/$name.done" ] || [ -e "$OUT/$name/done" ] || [ -e "$OUT/$name/model/model_index.json" ]; then
    echo "== $name: already done"; return
  fi
  echo "== $name"
  local start=$(date +%s) seconds="$OUT/${name%%.*}.seconds"
  "$@"
  echo $(( $(cat "$seconds" 2>/dev/null || echo 0) + $(date +%s) - start )) > "$seconds"
  touch "$OUT/$name.done"
}
