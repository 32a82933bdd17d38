# Sourced by recipes/*/run.sh: numbered, restartable stages.
#   run_stage N "description" command args...
# runs the command when stage <= N <= stop_stage (variables set by the recipe) and leaves
# "$work/.stageN.done" behind; a stage already done is skipped, so a recipe can be rerun after
# a crash or started again from any stage (delete the marker to redo a stage).
run_stage() {
  local n="$1" what="$2"; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return; fi
  if [ -f "$work/.stage$n.done" ]; then echo "stage $n ($what): done before, skipped"; return; fi
  echo "=== stage $n: $what"
  "$@"
  touch "$work/.stage$n.done"
}
