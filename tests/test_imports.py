"""`import asr.model` stays light: the model does not need a tokenizer library, the CLI's
console, audio file reading or the data package."""

import subprocess
import sys

HEAVY = ("sentencepiece", "rich", "soundfile", "tiktoken", "asr.data")


def test_model_imports_no_tokenizer_console_audio_or_data_modules():
    code = "import sys, asr.model; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == []
