#!/usr/bin/env bash
# LibriSpeech recipe: download -> manifests -> tokenizer -> train -> average -> decode + WER.
#
# Usage: recipes/librispeech/run.sh --root /data/librispeech [--config configs/transformer_100h.yaml]
#          [--gpus N] [--stage N] [--stop-stage M] [--work DIR]
#        recipes/librispeech/run.sh --dry-run [--config C ...] [--gpus "1 4 8"] [--work DIR]
#   stage 0  set up .venv
#   stage 1  download the subsets into --root (resumable, checksum-verified) and write manifests:
#            train_100h.jsonl (train-clean-100) or train_960h.jsonl (all three training subsets),
#            and dev.jsonl = dev-clean + dev-other, on which training validates and picks the best
#   stage 2  SentencePiece tokenizer (unigram, the config's data.vocab_size units)
#   stage 3  train (torchrun over --gpus GPUs when more than one)
#   stage 4  average the 10 best checkpoints by dev WER
#   stage 5  decode dev/test clean and other with joint CTC/attention beam search; WER reports in
#            exp/<config>/decode/<set>-joint_beam-b10-ctc0.3-avg10/
# --dry-run prints, for each config (default: the four LibriSpeech configs) and GPU count
# (default: 1 4 8), the schedule `asr train` would follow: audio per update, updates per epoch,
# total updates and warmup share, from the training manifest in --work (durations only).
# Outputs go under --work (default recipes/librispeech/work, git-ignored). A finished stage
# leaves a .done marker with a hash of its inputs and options: rerunning skips it, unless the
# config or options changed, in which case it runs again (see recipes/stages.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stage=0; stop_stage=100; root=""; gpus=""; dry_run=false; configs=()
work="$repo/recipes/librispeech/work"
beam=10; ctc_weight=0.3; average=10
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --config) configs+=("$2"); shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    *) echo "unknown option $1 (valid: --root --config --stage --stop-stage --work --gpus --dry-run)" >&2; exit 2 ;;
  esac
done
asr="$repo/.venv/bin/asr"

# train_100h.jsonl for *_100h configs, train_960h.jsonl for *_960h ones.
train_manifest_for() { local name; name="$(basename "$1" .yaml)"; echo "$work/manifests/train_${name##*_}.jsonl"; }

if $dry_run; then
  [ ${#configs[@]} -gt 0 ] || configs=("$repo"/configs/{transformer,conformer}_{100h,960h}.yaml)
  for config in "${configs[@]}"; do
    for n in ${gpus:-1 4 8}; do
      echo "=== $(basename "$config" .yaml) on $n GPU(s)"
      "$asr" train --config "$config" --dry-run --gpus "$n" --set data.train_manifest="$(train_manifest_for "$config")"
    done
  done
  exit 0
fi

[ -n "$root" ] || { echo "--root DIR is required (where LibriSpeech is or will be downloaded)" >&2; exit 2; }
[ ${#configs[@]} -le 1 ] || { echo "give one --config to train (several only with --dry-run)" >&2; exit 2; }
config="${configs[0]:-$repo/configs/transformer_100h.yaml}"
gpus="${gpus:-1}"
name="$(basename "$config" .yaml)"
case "$name" in
  *_960h) train_subsets="train-clean-100,train-clean-360,train-other-500" ;;
  *) train_subsets="train-clean-100" ;;
esac
train_manifest="$(train_manifest_for "$config")"
dev_manifest="$work/manifests/dev.jsonl"
tokenizer="$work/tokenizer_${name##*_}"
exp="$work/exp/$name"
mkdir -p "$work"
source "$repo/recipes/stages.sh"

manifests() {  # subsets...
  local subsets="$1"
  "$asr" prepare librispeech --root "$root" --download --subsets "$subsets,dev-clean,dev-other,test-clean,test-other" \
    --out "$work/manifests"
  # Several training subsets (the 960 h set) are concatenated into one manifest.
  for subset in ${subsets//,/ }; do cat "$work/manifests/$subset.jsonl"; done > "$train_manifest"
  cat "$work/manifests/dev-clean.jsonl" "$work/manifests/dev-other.jsonl" > "$dev_manifest"
}
train() {  # config gpus train-manifest dev-manifest tokenizer exp
  local args=(--config "$1" --exp "$6" --set data.train_manifest="$3" --set data.dev_manifest="$4"
    --set data.tokenizer="$5")
  if [ "$2" -gt 1 ]; then
    "$repo/.venv/bin/torchrun" --nproc-per-node "$2" -m asr.cli train "${args[@]}"
  else
    "$asr" train "${args[@]}"
  fi
}
decode() {  # exp beam ctc-weight averaged
  for subset in dev-clean dev-other test-clean test-other; do
    "$asr" decode --exp "$1" --manifest "$work/manifests/$subset.jsonl" \
      --method joint_beam --beam "$2" --ctc-weight "$3" --batch-size 16 \
      --out "$1/decode/$subset-joint_beam-b$2-ctc$3-avg$4"
  done
}

run_stage 0 "set up" "$repo/recipes/setup.sh"
# The vocabulary size is the config's (data.vocab_size); passed as a number so that changing
# other keys of the config does not retrain the tokenizer.
vocab="$("$repo/.venv/bin/python" -c 'import sys; from asr.config import load_config; print(load_config(sys.argv[1]).data.vocab_size)' "$config")"
run_stage 1 "download and manifests" manifests "$train_subsets"
run_stage 2 "tokenizer ($vocab units)" "$asr" tokenizer train --manifest "$train_manifest" --vocab-size "$vocab" --out "$tokenizer"
run_stage 3 "train $name" train "$config" "$gpus" "$train_manifest" "$dev_manifest" "$tokenizer" "$exp"
run_stage 4 "average" "$asr" average --exp "$exp" --best "$average"
run_stage 5 "decode" decode "$exp" "$beam" "$ctc_weight" "$average"
