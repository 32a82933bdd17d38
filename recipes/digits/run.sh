#!/usr/bin/env bash
# Connected digits from real speech: Free Spoken Digit Dataset recordings joined into digit strings,
# a tiny Transformer trained on three speakers and scored on a fourth it has never heard.
# About 25 minutes on 2 CPU cores; see recipes/digits/README.md for results.
#
# Usage: recipes/digits/run.sh --fsdd DIR [--test-speaker george] [--stage N] [--stop-stage M]
#          [--work DIR] [--config FILE] [--utterances N] [--eval-utterances N]
#          [--max-index N] [--max-steps N] [--seed S]
#   --fsdd DIR   the 'recordings' folder of an FSDD clone ({digit}_{speaker}_{index}.wav, 8 kHz)
#   stage 0  set up .venv (recipes/setup.sh)
#   stage 1  build the corpus (local/make_corpus.py): LibriSpeech layout, 16 kHz FLAC, subsets
#            train/dev (3 speakers, disjoint recordings) and test (--test-speaker alone)
#   stage 2  manifests (asr prepare librispeech)
#   stage 3  SentencePiece tokenizer (30 units: one per digit word)
#   stage 4  train (conf/digits.yaml)
#   stage 5  average the 3 best checkpoints by dev WER
#   stage 6  decode the test speaker: attention greedy and joint CTC/attention beam (10, CTC 0.3)
# Quick runs (tests): --utterances (training utterances), --eval-utterances (dev and test each),
# --max-index (use only FSDD recordings with index < N) and --max-steps (stop training early).
# Everything is written under --work (default recipes/digits/work/test-<speaker>, git-ignored); each
# stage leaves a .done marker and is skipped when rerun, so use a new --work to change options.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/recipes/digits"
stage=0; stop_stage=100; fsdd=""; work=""; test_speaker="george"; seed=0
config="$here/conf/digits.yaml"
utterances=4000; eval_utterances=""; max_index=50; max_steps=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fsdd) fsdd="$2"; shift 2 ;;
    --test-speaker) test_speaker="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --utterances) utterances="$2"; shift 2 ;;
    --eval-utterances) eval_utterances="$2"; shift 2 ;;
    --max-index) max_index="$2"; shift 2 ;;
    --max-steps) max_steps="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "unknown option $1 (valid: --fsdd --test-speaker --stage --stop-stage --work --config" \
            "--utterances --eval-utterances --max-index --max-steps --seed)" >&2; exit 2 ;;
  esac
done
work="${work:-$here/work/test-$test_speaker}"
python="$repo/.venv/bin/python"
asr="$repo/.venv/bin/asr"
mkdir -p "$work"
source "$repo/recipes/stages.sh"

corpus() {
  [ -n "$fsdd" ] || { echo "--fsdd DIR is required: the 'recordings' folder of a clone of" \
    "https://github.com/Jakobovski/free-spoken-digit-dataset" >&2; exit 2; }
  local eval_args=()
  [ -z "$eval_utterances" ] || eval_args=(--dev-utterances "$eval_utterances" --test-utterances "$eval_utterances")
  "$python" "$here/local/make_corpus.py" --fsdd "$fsdd" --out "$work/corpus" \
    --test-speaker "$test_speaker" --train-utterances "$utterances" --max-index "$max_index" \
    --seed "$seed" "${eval_args[@]}"
}
train() {
  "$asr" train --config "$config" --exp "$work/exp" \
    --set data.train_manifest="$work/manifests/train.jsonl" \
    --set data.dev_manifest="$work/manifests/dev.jsonl" \
    --set data.tokenizer="$work/tokenizer" \
    --set train.max_steps="$max_steps" --set train.seed="$((1234 + seed))"
}
decode() {
  local method
  for method in attention_greedy joint_beam; do
    "$asr" decode --exp "$work/exp" --manifest "$work/manifests/test.jsonl" --method "$method" \
      --beam 10 --ctc-weight 0.3 --out "$work/exp/decode/test-$method"
  done
}

run_stage 0 "set up" "$repo/recipes/setup.sh"
run_stage 1 "build the corpus (test speaker: $test_speaker)" corpus
run_stage 2 "manifests" "$asr" prepare librispeech --root "$work/corpus" --subsets train,dev,test \
  --out "$work/manifests" --workers 2
run_stage 3 "tokenizer" "$asr" tokenizer train --manifest "$work/manifests/train.jsonl" --vocab-size 30 \
  --out "$work/tokenizer"
run_stage 4 "train" train
run_stage 5 "average" "$asr" average --exp "$work/exp" --best 3
run_stage 6 "decode the unseen test speaker" decode
echo "results: $work/exp/decode/test-*/wer.json (this run: ${SECONDS}s)"
