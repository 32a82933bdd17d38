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


def test_decoding_imports_nothing_of_the_whisper_importer_or_the_lm_package():
    """Data flows one way: asr.decode is downstream of the model and the tokenizer; the Whisper
    importer (asr.whisper) and the LM's training (asr.lm) produce experiments and LMs that
    decoding reads, they are not a part of it."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "asr" / "decode"
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [f"{path.name}: {name}" for name in names if name.startswith(("asr.whisper", "asr.lm"))]
    assert found == []
