"""Run by torchrun in test_distributed.py: train a few steps, then save this rank's parameters."""

import sys
from pathlib import Path

import torch

from asr.config import load_config
from asr.train.loop import train

config_path, exp_dir, out_dir, *overrides = sys.argv[1:]
summary = train(load_config(config_path, overrides), exp_dir, device="cpu")
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(__import__("os").environ["RANK"])
torch.save({k: v.clone() for k, v in summary.model.state_dict().items()}, Path(out_dir) / f"rank{rank}.pt")
