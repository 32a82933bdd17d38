#!/usr/bin/env bash
# Create the project's virtual environment (.venv at the repository root) and install
# everything `asr` needs: the package with its Python dependencies, and espeak-ng (used to
# synthesise the embedded default corpus and the end-to-end tests' data).
# Idempotent: a second run only checks.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"

if ! command -v espeak-ng >/dev/null 2>&1; then
  echo "setup: installing espeak-ng (Debian package)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq espeak-ng >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq espeak-ng >/dev/null; }
fi

if [ ! -x "$repo/.venv/bin/python" ]; then
  echo "setup: creating $repo/.venv"
  "$python" -m venv "$repo/.venv"
fi
if ! "$repo/.venv/bin/python" -c "import asr, torch, torchaudio, pytest" >/dev/null 2>&1 \
   || [ "$repo/pyproject.toml" -nt "$repo/.venv/.installed" ]; then
  echo "setup: installing asr and its dependencies into .venv (torch takes a minute)"
  "$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo[test]"
  touch "$repo/.venv/.installed"
fi
echo "setup: ready ($("$repo/.venv/bin/python" -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)'))"
