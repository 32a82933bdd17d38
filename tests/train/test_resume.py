"""Kill training between checkpoints, resume it, and get exactly the uninterrupted run's losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toy import toy_overrides

STEPS = 14
# Reverberation and noise of every kind that needs no files: drawn per utterance in the loader
# workers, they must come out the same after a resume.
NOISE = ["augment.noise_prob=0.8", "augment.noise_kinds=[white,pink,babble]", "augment.reverb_prob=0.5"]


def _train_command(exp: Path, corpus, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "asr.cli", "train", "--config", "configs/tiny.yaml", "--exp", str(exp)]
    for override in toy_overrides(corpus, f"train.max_steps={STEPS}", "train.checkpoint_every=4", *extra):
        command += ["--set", override]
    return command


def _losses(exp: Path) -> dict[int, float]:
    """Step -> loss from the experiment log (a step logged twice must agree with itself)."""
    losses: dict[int, float] = {}
    for line in (exp / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "train":
            assert losses.setdefault(record["step"], record["loss"]) == record["loss"]
    return losses


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("workers, accum_steps, noise", [(0, 1, []), (2, 3, NOISE)])
def test_resume_after_a_kill_continues_with_identical_losses(toy_corpus, tmp_path, workers, accum_steps, noise):
    extra = [f"data.num_workers={workers}", f"train.accum_steps={accum_steps}", "augment.speed_perturb=true", *noise]
    reference = tmp_path / "reference"
    _run(_train_command(reference, toy_corpus, *extra))
    expected = _losses(reference)
    assert sorted(expected) == list(range(1, STEPS + 1))

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _train_command(killed, toy_corpus, *extra),
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = killed / "log.jsonl"
    deadline = time.time() + 120
    # Kill (SIGKILL: no chance to clean up) once step 6 is logged: after the step-4 checkpoint.
    while time.time() < deadline and process.poll() is None:
        if log.is_file() and any(json.loads(l).get("step", 0) >= 6 for l in log.read_text().splitlines()):
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    before = _losses(killed)
    assert max(before) < STEPS

    _run(_train_command(killed, toy_corpus, *extra))
    resumed = _losses(killed)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    assert resumed == expected  # bit-for-bit: same batches, augmentation, dropout and optimiser state
