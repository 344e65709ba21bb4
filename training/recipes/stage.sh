# Sourced by the recipes' run.sh. Needs OUT.
#
# `stage NAME COMMAND...` runs COMMAND unless the stage is done: OUT/NAME.done, OUT/NAME/done or
# OUT/NAME/model exists. Running a recipe again therefore goes on where it stopped. The seconds it took
# are added to OUT/<stage>.seconds, where <stage> is NAME up to its first dot: the parts of one training
# run (to2v.1, to2v.2, ...) add up to to2v's time, and a resumed stage adds to its own. While a stage
# runs, OUT/NAME.running holds its seconds so far (every STAGE_TICK seconds, default 60), so the time of
# a run that was killed midway still counts when the stage is started again (a run that fails or is
# interrupted counts in full).
add_seconds() {  # add_seconds FILE N: FILE's number (0 if none or empty) plus N (0 if empty)
  local had; had="$(cat "$1" 2>/dev/null || true)"
  echo $(( ${had:-0} + ${2:-0} )) > "$1"
}

stage() {
  local name="$1"; shift
  if [ -e "$OUT/$name.done" ] || [ -e "$OUT/$name/done" ] || [ -e "$OUT/$name/model/model_index.json" ]; then
    echo "== $name: already done"; return
  fi
  echo "== $name"
  local start=$(date +%s) seconds="$OUT/${name%%.*}.seconds" running="$OUT/$name.running"
  if [ -f "$running" ]; then  # the time of a run stopped midway
    add_seconds "$seconds" "$(cat "$running")"
    rm "$running"
  fi
  ( while sleep "${STAGE_TICK:-60}" && kill -0 $$; do echo $(( $(date +%s) - start )) > "$running.tmp" && mv "$running.tmp" "$running"; done ) >/dev/null 2>&1 &
  local ticker=$! status=0
  "$@" || status=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  add_seconds "$seconds" $(( $(date +%s) - start ))
  rm -f "$running"
  [ "$status" -eq 0 ] || return "$status"
  touch "$OUT/$name.done"
}
