"""Fixtures of the fault and bad-input suite: one tiny world made once per session (a
LibriSpeech-layout corpus, its manifests, and the tests' tiny random experiment), private copies
of its experiment, a full disk and a read-only folder. Helpers are in ``reliability_kit.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from asr.data.librispeech import prepare_librispeech
from librispeech_tree import make_librispeech_tree
from reliability_kit import TEXTS, World, speechlike


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


@pytest.fixture
def copy_exp(world: World, tmp_path: Path):
    """Factory: a private copy of the session experiment (tests may damage it)."""
    def make() -> Path:
        exp = tmp_path / "exp"
        shutil.copytree(world.exp, exp)
        return exp

    return make


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


@pytest.fixture
def filling_disk(tmp_path: Path):
    """``(folder, fill)`` on a real 16 MiB tmpfs: ``fill()`` takes all the space left, so that the
    next write of a new file fails with the kernel's own ENOSPC. Skips where no tmpfs can be
    mounted (the faults are then only those of ``full_disk``'s write wrapper)."""
    disk = tmp_path / "filling"
    with _mounted(disk, "size=16m") as mounted:
        if not mounted:
            pytest.skip("needs a tmpfs (root and mount(8)) to fill a real disk")

        def fill() -> None:
            with contextlib.suppress(OSError), (disk / "filler").open("ab") as f:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()

        yield disk, fill


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
