#!/usr/bin/env bash
# The embedded default: a small English corpus spoken by espeak-ng, end to end in ~10 minutes
# on 2 CPU cores: prepare -> tokenizer -> train (configs/tiny.yaml) -> decode -> WER report.
#
# Usage: recipes/synthetic/run.sh [--stage N] [--stop-stage M] [--work DIR]
#   stage 0  set up .venv (recipes/setup.sh)
#   stage 1  synthesise the corpus (LibriSpeech layout, subsets train/dev/test, disjoint speakers)
#   stage 2  manifests (asr prepare librispeech)
#   stage 3  SentencePiece tokenizer
#   stage 4  train the tiny model
#   stage 5  decode the unseen test speakers (attention greedy and joint CTC/attention beam)
# Everything is written under --work (default recipes/synthetic/work, git-ignored); each stage
# leaves a .done marker and is skipped when rerun.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stage=0
stop_stage=100
work="$repo/recipes/synthetic/work"
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "unknown option $1 (valid: --stage N --stop-stage M --work DIR)" >&2; exit 2 ;;
  esac
done
asr="$repo/.venv/bin/asr"
mkdir -p "$work"
source "$repo/recipes/stages.sh"

run_stage 0 "set up" "$repo/recipes/setup.sh"
run_stage 1 "synthesise corpus" "$asr" prepare synthetic --out "$work/corpus" \
  --train-speakers 20 --dev-speakers 3 --test-speakers 3 --utterances 30
run_stage 2 "manifests" "$asr" prepare librispeech --root "$work/corpus" --subsets train,dev,test --out "$work/manifests"
run_stage 3 "tokenizer" "$asr" tokenizer train --manifest "$work/manifests/train.jsonl" --vocab-size 128 --out "$work/tokenizer"
run_stage 4 "train" "$asr" train --config "$repo/configs/tiny.yaml" --exp "$work/exp" \
  --set data.train_manifest="$work/manifests/train.jsonl" \
  --set data.dev_manifest="$work/manifests/dev.jsonl" \
  --set data.tokenizer="$work/tokenizer"
decode() {
  "$asr" average --exp "$work/exp" --best 3
  for method in attention_greedy joint_beam; do
    "$asr" decode --exp "$work/exp" --manifest "$work/manifests/test.jsonl" --method "$method" \
      --beam 10 --ctc-weight 0.3 --out "$work/exp/decode/test-$method"
  done
}
run_stage 5 "decode and score" decode
echo "results: $work/exp/decode/*/wer.json"
