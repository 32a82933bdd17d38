"""Shared pieces of the fault and bad-input suite: one tiny world made once per session (a
LibriSpeech-layout corpus, its manifests, and the tests' tiny random experiment), a CLI runner, and the checks every test makes: the exit code, a one-line message without
a traceback, and that files written before are still there, byte for byte.

Running commands in-process (typer's CliRunner) keeps the suite fast; the kill and memory-limit
tests run ``asr`` in a subprocess (``run_asr``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from asr.cli import app
from asr.data.librispeech import prepare_librispeech
from librispeech_tree import make_librispeech_tree

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


@pytest.fixture(scope="session")
def world(tmp_path_factory, random_experiment) -> World:
    root = tmp_path_factory.mktemp("world")
    for subset, speakers in (("train", ("11", "12")), ("test", ("21",))):
        utterances = [
            (spk, "5", TEXTS[i % len(TEXTS)], speechlike(0.6 + 0.1 * i, seed=i))
            for i, spk in enumerate(speakers * 3)
        ]
        make_librispeech_tree(root, subset, utterances)
    manifests = root / "manifests"
    prepare_librispeech(root, ["train", "test"], manifests)
    exp, _ = random_experiment(TEXTS, decoder_layers=1)  # the tests' one tiny model
    tokenizer = exp / "tokenizer"
    yaml_config = root / "tiny.yaml"
    yaml_config.write_text(
        "data:\n"
        f"  train_manifest: {manifests / 'train.jsonl'}\n"
        f"  tokenizer: {tokenizer}\n"
        "  num_workers: 0\n  max_batch_seconds: 4\n"
        "train:\n  epochs: 1\n  max_steps: 1\n  log_every: 1\n  warmup_steps: 1\n"
    )
    return World(root, manifests, tokenizer, exp, yaml_config)


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


@pytest.fixture
def copy_exp(world: World, tmp_path: Path):
    """Factory: a private copy of the session experiment (tests may damage it)."""
    def make() -> Path:
        exp = tmp_path / "exp"
        shutil.copytree(world.exp, exp)
        return exp

    return make


def write_wave(path: Path, wave: np.ndarray, rate: int = RATE) -> Path:
    """float32 WAV: exact samples, and it can hold NaN and Inf."""
    sf.write(path, wave.astype(np.float32), rate, subtype="FLOAT")
    return path


# --------------------------------------------------------------------------- small file systems


def _mount_tmpfs(path: Path, options: str) -> bool:
    """Mount a tmpfs on ``path`` (root, or anyone where the machine allows); False if it cannot."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0 or os.environ.get("ASR_TEST_NO_MOUNT"):
        return False  # (ASR_TEST_NO_MOUNT=1 tries the fallbacks where mounting works)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def _mounted(path: Path, options: str):
    mounted = _mount_tmpfs(path, options)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch):
    """Factory: ``fill(folder_contents: dict[name, bytes]) -> folder`` on a disk with no space left
    once those files are written. A real 512 KiB tmpfs where the machine allows mounting one;
    otherwise every write through asr.files, and every downloaded chunk, fails with ENOSPC (a
write wrapper)."""
    disk = tmp_path / "disk"
    with _mounted(disk, "size=512k") as mounted:
        def fill(contents: dict[str, bytes]) -> Path:
            for name, data in contents.items():
                (disk / name).parent.mkdir(parents=True, exist_ok=True)
                (disk / name).write_bytes(data)
            if mounted:
                with contextlib.suppress(OSError), (disk / "filler").open("wb") as f:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
            else:
                _enospc_wrapper(monkeypatch)
            return disk

        yield fill


def _enospc_wrapper(monkeypatch) -> None:
    import errno

    import asr.data.download
    import asr.files

    def no_space(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def no_space_chunk(f, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(asr.files, "_fsync", no_space)
    monkeypatch.setattr(asr.data.download, "_append", no_space_chunk)


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder that cannot be written: a read-only tmpfs where one can be mounted (root ignores
    permission bits), else mode 0555."""
    folder = tmp_path / "read-only"
    with _mounted(folder, "ro,size=64k") as mounted:
        if not mounted:
            folder.chmod(0o555)
        yield folder
        if not mounted:
            folder.chmod(0o755)
