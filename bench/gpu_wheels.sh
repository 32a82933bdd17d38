#!/usr/bin/env bash
# Wheels that bench/gpu_check.sh installs on a GPU machine that cannot reach PyPI (the lent H200:
# Python 3.12, x86-64; it has torch, torchaudio, sentencepiece, typer, rich, PyYAML, tiktoken,
# safetensors and click already). Run here, where pip works:  bench/gpu_wheels.sh [DIR=.whl]
# DIR must be git-ignored (echo /.whl/ >> .git/info/exclude) and carried to the machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo/.whl}"
py="${PYTHON:-$repo/.venv/bin/python}"; [ -x "$py" ] || py=python3
"$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$dir" \
  soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 jiwer==4.0.0 rapidfuzz==3.14.6
ls -la "$dir"
