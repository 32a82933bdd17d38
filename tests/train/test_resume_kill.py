"""Exact resume everywhere: SIGKILL the trainer at named points (between steps, inside validation,
inside the best-K bookkeeping, inside a checkpoint write), resume, and get the uninterrupted run's
losses, validations, best-K index and weights bit for bit. Also a kill inside `asr average`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.faults import ENV
from toy import toy_overrides

ROOT = Path(__file__).parents[2]
STEPS = 8


def _overrides(corpus) -> list[str]:
    return toy_overrides(
        corpus, f"train.max_steps={STEPS}", "train.checkpoint_every=3", "train.valid_every=2",
        "train.keep_best=2", "train.valid_max_utterances=6", f"data.dev_manifest={corpus['manifest']}",
        "augment.speed_perturb=true", "train.log_every=2",  # log windows span checkpoints (3, 6)
    )  # fmt: skip


def _asr(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at:
        env[ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "asr.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _train(exp: Path, corpus, kill_at: str | None = None) -> subprocess.CompletedProcess:
    args = ["train", "--config", "configs/tiny.yaml", "--exp", str(exp)]
    for override in _overrides(corpus):
        args += ["--set", override]
    return _asr(args, kill_at)


def _events(exp: Path, event: str) -> list[dict]:
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == event]


def _outcome(exp: Path) -> dict:
    """Everything that must not depend on whether the run was interrupted."""
    train = [(r["step"], r["loss"], r["grad_norm"]) for r in _events(exp, "train")]
    valid = [(r["step"], r["loss"], r["wer"]) for r in _events(exp, "valid")]
    last = torch.load(exp / "checkpoints" / "last.pt", weights_only=True)
    return {
        "train": train,
        "valid": valid,
        "best": json.loads((exp / "checkpoints" / "best.json").read_text()),
        "files": sorted(p.name for p in (exp / "checkpoints").iterdir()),
        "weights": {k: v.tolist() for k, v in last["model"].items()},
        "position": last["position"],
    }


@pytest.fixture(scope="module")
def reference(toy_corpus, tmp_path_factory) -> tuple[Path, dict]:
    exp = tmp_path_factory.mktemp("reference") / "exp"
    result = _train(exp, toy_corpus)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = _outcome(exp)
    assert [s for s, *_ in outcome["train"]] == list(range(2, STEPS + 1, 2))  # each logged step once
    assert [s for s, *_ in outcome["valid"]] == [2, 4, 6, 8]
    return exp, outcome


# valid:3 is the validation of step 6, where a last.pt checkpoint is also due; valid:4 is the last.
@pytest.mark.parametrize("kill_at", ["step:5", "valid:3", "valid:4", "best:2", "checkpoint:3"])
def test_a_kill_anywhere_then_resume_gives_the_uninterrupted_run(toy_corpus, tmp_path, reference, kill_at):
    exp = tmp_path / "exp"
    killed = _train(exp, toy_corpus, kill_at)
    assert killed.returncode == -signal.SIGKILL, f"never reached {kill_at}: {killed.stderr[-2000:]}"
    resumed = _train(exp, toy_corpus)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _outcome(exp) == reference[1]
    assert not list(exp.rglob(".asr-tmp-*")), "a killed write's temp file was left behind"


def test_a_kill_while_averaging_changes_nothing_and_a_rerun_averages_the_same(tmp_path, reference):
    exp = tmp_path / "exp"
    shutil.copytree(reference[0], exp)
    expected = tmp_path / "expected.pt"
    assert _asr(["average", "--exp", str(reference[0]), "--best", "2", "--out", str(expected)]).returncode == 0

    killed = _asr(["average", "--exp", str(exp), "--best", "2"], kill_at="average")
    assert killed.returncode == -signal.SIGKILL
    assert not (exp / "checkpoints" / "averaged.pt").exists()  # no half-written model to decode with
    rerun = _asr(["average", "--exp", str(exp), "--best", "2"])
    assert rerun.returncode == 0, rerun.stderr
    averaged = torch.load(exp / "checkpoints" / "averaged.pt", weights_only=True)
    reference_average = torch.load(expected, weights_only=True)
    assert averaged["averaged_from"] == reference_average["averaged_from"]
    for name, value in reference_average["model"].items():
        assert torch.equal(averaged["model"][name], value), name
