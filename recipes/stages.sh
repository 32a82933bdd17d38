# Sourced by recipes/*/run.sh: numbered, restartable stages.
#   run_stage N "description" command args...
# runs the command when stage <= N <= stop_stage (variables set by the recipe) and then writes
# "$work/.stageN.done" holding a hash of what the stage was run with: the command and its
# arguments, the body of the command when it is a shell function, and the contents of every
# argument that names a file (also after "=", as in --set key=FILE): configs, manifests.
# A stage done with the same hash is skipped, so a recipe can be rerun after a crash or started
# again from any stage; a stage whose hash changed (another config, other options, new input
# files) runs again, and says why. Delete a marker to redo a stage regardless.
stage_hash() {
  {
    printf '%s\n' "$@"
    declare -f "$1" 2>/dev/null || true
    local arg
    for arg in "$@"; do
      if [ -f "$arg" ]; then sha256sum < "$arg"; fi
      if [ "${arg##*=}" != "$arg" ] && [ -f "${arg##*=}" ]; then sha256sum < "${arg##*=}"; fi
    done
  } | sha256sum | cut -d' ' -f1
}

run_stage() {
  local n="$1" what="$2"; shift 2
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return; fi
  local marker="$work/.stage$n.done" hash
  hash="$(stage_hash "$@")"
  if [ -f "$marker" ]; then
    if [ "$(cat "$marker")" = "$hash" ]; then
      echo "stage $n ($what): done before with the same inputs and options, skipped"
      return
    fi
    echo "stage $n ($what): its inputs or options changed since it was done; running it again"
  fi
  echo "=== stage $n: $what"
  "$@"
  echo "$hash" > "$marker"
}
