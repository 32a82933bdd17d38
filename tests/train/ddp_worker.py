"""Run by torchrun in test_distributed.py: train a few steps, then save this rank's parameters."""

import os
import sys
from pathlib import Path

import torch

from asr.config import load_config
from asr.train.loop import train

config_path, exp_dir, out_dir, *overrides = sys.argv[1:]
# ASR_DDP_DEVICE=cuda: bench/gpu_check.py's DDP check on every local GPU (NCCL)
summary = train(load_config(config_path, overrides), exp_dir, device=os.environ.get("ASR_DDP_DEVICE", "cpu"))
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(os.environ["RANK"])
torch.save({k: v.clone() for k, v in summary.model.state_dict().items()}, Path(out_dir) / f"rank{rank}.pt")
