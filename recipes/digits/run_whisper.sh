#!/usr/bin/env bash
# Connected digits with a pretrained start: Whisper tiny.en (the bundled CTranslate2 copy, or any
# checkpoint given with --model), scored zero-shot on the unseen speaker, then fine-tuned on the
# three training speakers without Whisper's 30 s padding and scored again. Same corpus, test
# speaker and scoring as run.sh (the from-scratch recipe); then noisy test sets and a second
# fine-tuning with noise augmentation, and a robustness table. About 20 minutes on 2 idle CPU cores.
#
# Usage: recipes/digits/run_whisper.sh --fsdd DIR [--test-speaker george] [--stage N] [--stop-stage M]
#          [--work DIR] [--config FILE] [--noise-config FILE] [--model SRC] [--utterances N] [--eval-utterances N]
#          [--max-steps N] [--train-max-digits N] [--seed S]
#   stage 0  set up .venv (recipes/setup.sh)
#   stage 1  build the corpus (local/make_corpus.py), as run.sh does
#   stage 2  manifests (asr prepare librispeech)
#   stage 3  import the Whisper model (asr import whisper; default: the bundled tiny.en)
#   stage 4  zero-shot: decode the test speaker with 30 s padding, greedy
#   stage 5  fine-tune unpadded (asr train --init, conf/whisper_finetune.yaml)
#   stage 6  decode the test speaker with the fine-tuned model, unpadded: greedy and beam 5
#   stage 7  noisy test sets (local/make_noisy.py): the test speaker with white noise and with
#            4-talker babble of the training speakers' dev recordings, at 10 and 0 dB SNR
#   stage 8  fine-tune as stage 5 with noise augmentation (conf/whisper_finetune_noise.yaml), exp-noise/
#   stage 9  robustness table (bench/robustness.py): conditions x systems, WER and RTF
# Scoring: --normalizer digits (one word per digit), so that Whisper's "98808" or "9, 7, 5" scores
# against NINE EIGHT EIGHT ZERO EIGHT digit by digit, as the references are read.
# Everything is written under --work (default recipes/digits/work/whisper-test-<speaker>).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/recipes/digits"
stage=0; stop_stage=100; fsdd=""; work=""; test_speaker="george"; seed=0; model="tiny.en"
config="$here/conf/whisper_finetune.yaml"; noise_config="$here/conf/whisper_finetune_noise.yaml"
utterances=1000; eval_utterances=""; max_steps=0
# Up to 10 digits per training utterance (run.sh: 7): a model fine-tuned on at most 7 loops on
# longer ones ("six six six ..."); the test utterances stay run.sh's (1 to 7 digits).
train_max_digits=10
while [ $# -gt 0 ]; do
  case "$1" in
    --fsdd) fsdd="$2"; shift 2 ;;
    --test-speaker) test_speaker="$2"; shift 2 ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage) stop_stage="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --noise-config) noise_config="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --utterances) utterances="$2"; shift 2 ;;
    --eval-utterances) eval_utterances="$2"; shift 2 ;;
    --max-steps) max_steps="$2"; shift 2 ;;
    --train-max-digits) train_max_digits="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "unknown option $1 (valid: --fsdd --test-speaker --stage --stop-stage --work --config" \
            "--noise-config --model --utterances --eval-utterances --max-steps --train-max-digits --seed)" >&2; exit 2 ;;
  esac
done
work="${work:-$here/work/whisper-test-$test_speaker}"
asr="$repo/.venv/bin/asr"
python="$repo/.venv/bin/python"
mkdir -p "$work"
source "$repo/recipes/stages.sh"

corpus() {
  [ -n "$fsdd" ] || { echo "--fsdd DIR is required: the 'recordings' folder of a clone of" \
    "https://github.com/Jakobovski/free-spoken-digit-dataset" >&2; exit 2; }
  local eval_args=()
  [ -z "$eval_utterances" ] || eval_args=(--dev-utterances "$eval_utterances" --test-utterances "$eval_utterances")
  "$python" "$here/local/make_corpus.py" --fsdd "$fsdd" --out "$work/corpus" \
    --test-speaker "$test_speaker" --train-utterances "$utterances" --train-max-digits "$train_max_digits" \
    --seed "$seed" "${eval_args[@]}"
}
finetune() {  # finetune CONFIG EXP
  "$asr" train --init "$work/whisper" --config "$1" --exp "$2" \
    --set data.train_manifest="$work/manifests/train.jsonl" \
    --set data.dev_manifest="$work/manifests/dev.jsonl" \
    --set train.max_steps="$max_steps" --set train.seed="$((1234 + seed))"
}
decode_finetuned() {
  "$asr" decode --exp "$work/exp" --manifest "$work/manifests/test.jsonl" --method attention_greedy \
    --normalizer digits --out "$work/exp/decode/test-attention_greedy"
  "$asr" decode --exp "$work/exp" --manifest "$work/manifests/test.jsonl" --method attention_beam \
    --beam 5 --normalizer digits --out "$work/exp/decode/test-attention_beam"
}

run_stage 0 "set up" "$repo/recipes/setup.sh"
run_stage 1 "build the corpus (test speaker: $test_speaker)" corpus
run_stage 2 "manifests" "$asr" prepare librispeech --root "$work/corpus" --subsets train,dev,test \
  --out "$work/manifests" --workers 2
run_stage 3 "import $model" "$asr" import whisper "$model" --out "$work/whisper"
run_stage 4 "zero-shot decode of the unseen test speaker (30 s padding)" "$asr" decode \
  --exp "$work/whisper" --manifest "$work/manifests/test.jsonl" --method attention_greedy \
  --normalizer digits --out "$work/whisper/decode/test-attention_greedy"
run_stage 5 "fine-tune unpadded" finetune "$config" "$work/exp"
run_stage 6 "decode the unseen test speaker with the fine-tuned model (unpadded)" decode_finetuned
run_stage 7 "noisy test sets (white and babble, 10 and 0 dB)" "$python" "$here/local/make_noisy.py" \
  --test "$work/manifests/test.jsonl" --babble "$work/manifests/dev.jsonl" --out "$work/data/noisy" \
  --manifests "$work/manifests" --seed "$seed"
run_stage 8 "fine-tune unpadded with noise augmentation" finetune "$noise_config" "$work/exp-noise"
run_stage 9 "robustness table" "$python" "$repo/bench/robustness.py" --work "$work" \
  --json "$work/robustness.json"
echo "results: $work/whisper/decode/test-*/wer.json (zero-shot), $work/exp/decode/test-*/wer.json" \
  "(fine-tuned); this run: ${SECONDS}s"
