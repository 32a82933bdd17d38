#!/usr/bin/env bash
# Every benchmark table of docs/benchmarks.md, one after another, on an otherwise idle machine:
#   bench/run_all.sh OUT_DIR [--finetuned EXP] [--unseen SPEAKER] [--skip-peers]
# Each script's table goes to OUT_DIR/<name>.txt and its JSON line to OUT_DIR/<name>.json.
# --finetuned: a Whisper experiment fine-tuned unpadded (recipes/digits/run_whisper.sh makes one,
# in recipes/digits/work/whisper-test-george/exp), with --unseen its unseen speaker (george).
# The peer benchmark (ESPnet, SpeechBrain) installs its own venv on first use (bench/peer_run.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: bench/run_all.sh OUT_DIR [--finetuned EXP] [--unseen SPEAKER] [--skip-peers]}"; shift
whisper_args=(); peers=1
while [ $# -gt 0 ]; do
  case "$1" in
    --finetuned|--unseen) whisper_args+=("$1" "$2"); shift 2 ;;
    --skip-peers) peers=0; shift ;;
    *) echo "unknown option $1 (valid: --finetuned EXP --unseen SPEAKER --skip-peers)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
py="$repo/.venv/bin/python"
run() {  # name, command...
  local name="$1"; shift
  echo "=== $name: $* ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1 /proc/loadavg))"
  "$@" > "$out/$name.txt"
  cat "$out/$name.txt"
}
cd "$repo"
run decode "$py" bench/decode_speed.py --config configs/transformer_100h.yaml --threads 2 --repeats 1 --json "$out/decode.json"
run decode_peer "$py" bench/decode_speed.py --config configs/transformer_100h.yaml --threads 2 --repeats 1 --steps 60 --json "$out/decode_peer.json"
run train "$py" bench/train_speed.py --configs tiny,transformer_100h,conformer_100h --batch 8 --tokens 60 --steps 1 --json "$out/train.json"
run whisper "$py" bench/whisper_speed.py --threads 2 "${whisper_args[@]}" --json "$out/whisper.json"
if [ "$peers" = 1 ]; then
  run peers "$repo/bench/peer_run.sh" "$out/peers.json"
fi
echo "=== done ($(date -u +%H:%M:%S) UTC)"
