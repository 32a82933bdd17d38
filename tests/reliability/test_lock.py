"""Two real `asr train` processes on one --exp: the second exits 2, names the holder and changes
nothing; a lock left by a killed run is taken over with a message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

from asr.data.manifest import Utterance, write_manifest
from asr.data.manifest import manifest_texts
from asr.text.tokenizer import train_tokenizer

ROOT = Path(__file__).parents[2]
WORDS = "ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL".split()
TINY = [
    "model.d_model=32", "model.encoder.layers=1", "model.encoder.heads=2", "model.encoder.ff_dim=64",
    "model.encoder.conv_channels=4", "model.decoder.layers=1", "model.decoder.heads=2",
    "model.decoder.ff_dim=64", "features.n_mels=20", "data.num_workers=0", "data.max_batch_seconds=3",
    "train.log_every=1", "train.warmup_steps=5",
]  # fmt: skip


def _corpus(root: Path) -> list[str]:
    """A dozen noise 'utterances' and a tokenizer; returns the --set overrides that use them."""
    generator = torch.Generator().manual_seed(0)
    utterances = []
    for n in range(12):
        path = root / f"u{n}.wav"
        sf.write(path, (0.1 * torch.randn(8000 + 800 * n, generator=generator)).numpy(), 16000)
        text = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(1 + n % 3))
        utterances.append(Utterance(f"s-1-{n}", str(path), (8000 + 800 * n) / 16000, 16000, "s", "1", text))
    write_manifest(utterances, root / "train.jsonl")
    train_tokenizer(manifest_texts([root / "train.jsonl"]), root / "tokenizer", vocab_size=30)
    return [f"data.train_manifest={root / 'train.jsonl'}", f"data.tokenizer={root / 'tokenizer'}", *TINY]


def _command(exp: Path, overrides: list[str]) -> list[str]:
    command = [sys.executable, "-m", "asr.cli", "train", "--config", "configs/tiny.yaml", "--exp", str(exp)]
    for override in overrides:
        command += ["--set", override]
    return command


def _snapshot(exp: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(exp)): (p.stat().st_size, p.stat().st_mtime_ns) for p in exp.rglob("*") if p.is_file()}


def _wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert process.poll() is None, "the first training ended before the test could use it"
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_training_on_a_busy_experiment_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
    overrides = _corpus(tmp_path)
    exp = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        _command(exp, [*overrides, "train.max_steps=100000", "train.checkpoint_every=2"]),
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # Once it has written a checkpoint, freeze it so that nothing changes while we look.
        _wait_for(lambda: (exp / "checkpoints" / "last.pt").is_file(), first)
        os.kill(first.pid, signal.SIGSTOP)
        before = _snapshot(exp)
        second = subprocess.run(_command(exp, [*overrides, "train.max_steps=3"]), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        lines = [l for l in second.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, second.stderr  # one line, no traceback
        assert f"is in use by pid {first.pid} on host {socket.gethostname()}" in lines[0]
        assert "another --exp" in lines[0]
        assert _snapshot(exp) == before  # the second run changed nothing

        os.killpg(first.pid, signal.SIGKILL)  # the holder dies without cleaning up
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert f"pid {first.pid}" in (exp / ".lock").read_text()  # its holder line is left behind

    third = subprocess.run(_command(exp, [*overrides, "train.max_steps=3"]), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"taking over the lock of {exp} from pid {first.pid}" in " ".join(third.stderr.split())
    assert torch.load(exp / "checkpoints" / "last.pt", weights_only=True)["position"]["step"] >= 3
    assert (exp / ".lock").read_text() == ""  # a clean exit leaves no holder
