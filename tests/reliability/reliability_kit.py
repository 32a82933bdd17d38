"""The fault and bad-input suite's helpers: speech-like audio, the tiny world's layout, running
``asr`` (in this process, or in a subprocess through ``driver.py``), and the checks every test
makes: the exit code, a one-line message without a traceback, and that files written before are
still there, byte for byte. Fixtures are in ``conftest.py``.

(A module of its own, not conftest.py: ``from conftest import`` would find another folder's.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

from asr.cli import app

RATE = 16000
TEXTS = ["HELLO WORLD", "GOOD MORNING", "ONE TWO THREE", "A DOG RAN", "YES NO", "THE CAT SAT"]
HERE = Path(__file__).parent
TINY_MODEL = [
    "model.d_model=16", "model.encoder.layers=1", "model.encoder.heads=2", "model.encoder.ff_dim=32",
    "model.encoder.conv_channels=4", "model.decoder.layers=1", "model.decoder.heads=2",
    "model.decoder.ff_dim=32", "features.n_mels=20",
]  # fmt: skip


def speechlike(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """(S,) float32: tones under a syllable-rate envelope, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 540.0, 1300.0))
    return (0.2 * envelope * wave / 3 + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@dataclass(frozen=True)
class World:
    root: Path  # corpus root (LibriSpeech/train, LibriSpeech/test)
    manifests: Path  # prepared train.jsonl, test.jsonl
    tokenizer: Path
    exp: Path  # tokenizer/ and checkpoints/last.pt of the tests' tiny random model
    config: Path  # a YAML config for `asr train` on this corpus

    @property
    def train_manifest(self) -> Path:
        return self.manifests / "train.jsonl"

    @property
    def test_manifest(self) -> Path:
        return self.manifests / "test.jsonl"


# --------------------------------------------------------------------------- running commands


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def asr(*args: object) -> Result:
    """Run ``asr ARGS`` in this process."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: show it as the test's failure
    return Result(result.exit_code, result.stdout, result.stderr)


def run_asr(*args: object, env: dict | None = None, memory_limit: int | None = None, timeout: float = 120) -> Result:
    """Run ``asr ARGS`` in a subprocess (through ``tests/reliability/driver.py``), optionally with
    an address-space limit in bytes (``ulimit -v``)."""
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path]),
                "OMP_NUM_THREADS": "1", "COLUMNS": "250", "NO_COLOR": "1", **(env or {})}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(HERE / "driver.py"), *map(str, args)],
        capture_output=True, text=True, env=full_env, timeout=timeout,
        preexec_fn=limit if memory_limit else None,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def limit_for_extra(extra: int) -> int:
    """An address-space limit that leaves ``extra`` bytes above what ``asr`` itself maps at start
    (the interpreter, torch and its libraries: about 3 GiB of address space, most never touched)."""
    return _baseline() + extra


_BASELINE: list[int] = []


def _baseline() -> int:
    if not _BASELINE:
        code = ("import asr.cli, asr.decode.run, asr.transcribe, torch;"
                "print(open('/proc/self/status').read().split('VmSize:')[1].split()[0])")  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        _BASELINE.append(int(out.stdout) * 1024 + (256 << 20))  # + what decoding's first calls map
    return _BASELINE[0]


def assert_one_line_error(result: Result, *fragments: str, code: int = 2) -> str:
    """The command failed with ``code`` and printed exactly one line, ``error: ...``, holding
    every fragment, and no traceback. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def assert_ends_in_one_line_error(result: Result, *fragments: str, code: int = 2) -> str:
    """Like ``assert_one_line_error`` for a command that prints progress first: its last line
    is the one error line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert sum(line.startswith("error: ") for line in lines) == 1, result.stderr
    return assert_one_line_error(Result(code, result.stdout, lines[-1] if lines else ""), *fragments, code=code)


def snapshot(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (a missing path is recorded as missing)."""
    found = {}
    for path in paths:
        if path.is_file():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            found[str(path)] = "missing"
    return found


def temp_leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob(".asr-tmp-*")]


def write_wave(path: Path, wave: np.ndarray, rate: int = RATE) -> Path:
    """float32 WAV: exact samples, and it can hold NaN and Inf."""
    sf.write(path, wave.astype(np.float32), rate, subtype="FLOAT")
    return path
