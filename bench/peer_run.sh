#!/usr/bin/env bash
# Peer benchmark: asr against ESPnet 202511 and SpeechBrain 1.1.2, same model size, one run
# (CPU, 2 threads, fp32 sgemm peak measured in the same process). See ../shared/bench/README.md.
#
#   bench/peer_run.sh [OUT.json] [peer_bench.py options]
#   bench/peer_run.sh .cache/peer.json                                  # full run, ~6 min on 2 idle cores
#   bench/peer_run.sh /tmp/smoke.json --skip speechbrain,asr_bf16 --repeats 1 --warmup 0   # smoke
#
# 1. If the peer venv is missing (no `installed.ok` marker), installs it with the README's commands
#    into .cache/peerbench/ (git-ignored; ~6 GB, ~2 min: the torch wheel is local). A git worktree
#    shares the venv of its main checkout (the folder that holds the common .git), so it is installed
#    once. torch==2.14.1 is pinned by a constraints file: without it pip replaces torch to satisfy
#    ESPnet's setuptools<74. `pip check` then reports two harmless conflicts (ci_sdr, setuptools).
# 2. Runs peer_bench.py against this checkout (ASR_ROOT), which prints the table and writes OUT.json
#    (default .cache/peer.json; always passed, so nothing is written beside peer_bench.py).
#
# Environment: PEERBENCH_DIR (venv folder), PEER_BENCH (path of peer_bench.py), PYTHON (python3.11).
# `asr_bf16` is very slow on CPUs without native bf16 (AMX / AVX512-BF16): add --skip asr_bf16 there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || echo "$ROOT/.git")
DIR=${PEERBENCH_DIR:-$(dirname "$common")/.cache/peerbench}
VENV=$DIR/venv
PYTHON=${PYTHON:-python3.11}
if [[ -z ${PEER_BENCH:-} ]]; then
    for p in "$ROOT/../shared/bench/peer_bench.py" "$ROOT/../../shared/bench/peer_bench.py"; do
        [[ -f $p ]] && PEER_BENCH=$p && break
    done
fi
[[ -f ${PEER_BENCH:-} ]] || { echo "peer_run.sh: peer_bench.py not found; set PEER_BENCH=/path/to/peer_bench.py" >&2; exit 2; }

install_venv() {
    echo "[peer_run] installing the peer venv into $VENV" >&2
    rm -rf "$VENV" "$DIR/installed.ok"
    mkdir -p "$DIR"
    "$PYTHON" -m venv "$VENV"
    local pip="$VENV/bin/pip"
    "$pip" install -q --upgrade pip wheel
    printf 'torch==2.14.1\ntorchaudio==2.11.0\n' > "$DIR/constraints.txt"
    local C=(-c "$DIR/constraints.txt")
    "$pip" install "${C[@]}" torch==2.14.1 torchaudio==2.11.0 soundfile
    # `pip install espnet` fails on its dep ci_sdr (a git URL dependency), used only by
    # speech-enhancement losses: install ESPnet without deps, then the deps it needs here.
    "$pip" install --no-deps espnet==202511
    "$pip" install "${C[@]}" configargparse typeguard humanfriendly scipy filelock librosa jamo==0.4.1 \
        PyYAML h5py kaldiio torch_complex nltk protobuf hydra-core opt-einsum lightning \
        sentencepiece==0.2.0 pyworld "pypinyin<=0.44.0" espnet_tts_frontend fast-bss-eval==0.1.3 \
        asteroid_filterbanks==0.4.0 editdistance "importlib-metadata<5.0"
    "$pip" install "${C[@]}" speechbrain==1.1.2
    # the runtime deps that `import asr` needs (sentencepiece came with the ESPnet deps above)
    "$pip" install "${C[@]}" jiwer typer rich soundfile pyyaml
    "$VENV/bin/python" - <<'EOF'
import torch, torchaudio, espnet, speechbrain, sentencepiece, jiwer, typer, rich, soundfile, yaml
assert torch.__version__.split("+")[0] == "2.14.1", f"torch was replaced: {torch.__version__}"
print(f"[peer_run] torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
      f"espnet {espnet.__version__}, speechbrain {speechbrain.__version__}")
EOF
    touch "$DIR/installed.ok"
}

[[ -f $DIR/installed.ok && -x $VENV/bin/python ]] || install_venv

JSON=$ROOT/.cache/peer.json
if [[ $# -gt 0 && $1 != -* ]]; then JSON=$1; shift; fi
mkdir -p "$(dirname "$JSON")"
cd "$ROOT"
ASR_ROOT=$ROOT exec "$VENV/bin/python" "$PEER_BENCH" --json "$JSON" "$@"
