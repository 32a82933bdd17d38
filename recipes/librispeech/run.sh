#!/usr/bin/env bash
# LibriSpeech recipe: download -> manifests -> tokenizer -> train -> average -> decode + WER.
#
# Usage: recipes/librispeech/run.sh --root /data/librispeech [--config configs/transformer_100h.yaml]
#          [--train train-clean-100] [--stage N] [--stop-stage M] [--work DIR] [--gpus N]
#   stage 0  set up .venv
#   stage 1  download the subsets into --root (resumable, checksum-verified) and write manifests
#   stage 2  SentencePiece tokenizer (5000 unigram units) on the training transcripts
#   stage 3  train (torchrun over --gpus GPUs when more than one)
#   stage 4  average the 10 best checkpoints
#   stage 5  decode dev/test clean and other with joint CTC/attention beam search; WER reports
# Outputs go under --work (default recipes/librispeech/work, git-ignored); each finished stage
# leaves a .done marker and is skipped when rerun, so the script can be restarted at will.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stage=0; stop_stage=100; root=""; gpus=1
config="$repo/configs/transformer_100h.yaml"
train_subsets="train-clean-100"
eval_subsets="dev-clean,dev-other,test-clean,test-other"
work="$repo/recipes/librispeech/work"
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --train) train_subsets="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    *) echo "unknown option $1 (valid: --root --config --train --stage --stop-stage --work --gpus)" >&2; exit 2 ;;
  esac
done
[ -n "$root" ] || { echo "--root DIR is required (where LibriSpeech is or will be downloaded)" >&2; exit 2; }
asr="$repo/.venv/bin/asr"
mkdir -p "$work"
source "$repo/recipes/stages.sh"
train_manifest="$work/manifests/train.jsonl"

manifests() {
  "$asr" prepare librispeech --root "$root" --download --subsets "$train_subsets,$eval_subsets" --out "$work/manifests"
  # Several training subsets (e.g. the 960 h set) are concatenated into one manifest.
  for subset in ${train_subsets//,/ }; do cat "$work/manifests/$subset.jsonl"; done > "$train_manifest"
}
train() {
  local args=(--config "$config" --exp "$work/exp"
    --set data.train_manifest="$train_manifest"
    --set data.dev_manifest="$work/manifests/dev-clean.jsonl"
    --set data.tokenizer="$work/tokenizer")
  if [ "$gpus" -gt 1 ]; then
    "$repo/.venv/bin/torchrun" --nproc-per-node "$gpus" -m asr.cli train "${args[@]}"
  else
    "$asr" train "${args[@]}"
  fi
}
decode() {
  for subset in ${eval_subsets//,/ }; do
    "$asr" decode --exp "$work/exp" --manifest "$work/manifests/$subset.jsonl" \
      --method joint_beam --beam 10 --ctc-weight 0.3 --batch-size 16 --out "$work/exp/decode/$subset"
  done
}

run_stage 0 "set up" "$repo/recipes/setup.sh"
run_stage 1 "download and manifests" manifests
run_stage 2 "tokenizer" "$asr" tokenizer train --manifest "$train_manifest" --vocab-size 5000 --out "$work/tokenizer"
run_stage 3 "train" train
run_stage 4 "average" "$asr" average --exp "$work/exp" --best 10
run_stage 5 "decode" decode
