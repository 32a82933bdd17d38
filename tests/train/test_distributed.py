"""Two CPU processes under torchrun (gloo): DDP keeps every rank's parameters identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from asr.config import load_config
from asr.model import ASRModel

from toy import toy_overrides

HERE = Path(__file__).parent


def test_two_ranks_keep_identical_parameters(toy_corpus, tmp_path):
    out = tmp_path / "params"
    out.mkdir()
    overrides = toy_overrides(toy_corpus, "train.max_steps=5", "train.checkpoint_every=0")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
        str(HERE / "ddp_worker.py"), "configs/tiny.yaml", str(tmp_path / "exp"), str(out),
        *overrides,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parents[1], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(out / "rank0.pt", weights_only=True)
    rank1 = torch.load(out / "rank1.pt", weights_only=True)
    last = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=True)
    assert last["position"]["step"] == 5
    assert (tmp_path / "exp" / ".lock").read_text() == ""  # rank 0 held it for both, and let go
    # The model as initialised (same seed) before any step: training must have moved it.
    config = load_config("configs/tiny.yaml", overrides)
    torch.manual_seed(config.train.seed)
    initial = ASRModel(config, last["vocab_size"]).state_dict()
    moved = 0
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between ranks"
        assert torch.equal(value, last["model"][name])
        moved += name.endswith("weight") and not torch.equal(value, initial[name])
    assert moved > 10
