"""AdamW with a warmup + inverse-square-root ("Noam") learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from asr.config import LMTrainConfig, TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig | LMTrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, norms and embeddings are not weight-decayed (they are not scale-free)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embed" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def noam_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based count of steps
    taken): linear warmup to 1.0 at ``warmup_steps``, then decay as sqrt(warmup / step)
    (Vaswani et al., 2017, eq. 3, rescaled so the peak is the configured lr)."""
    step = step + 1
    warmup = max(1, warmup_steps)
    return min(step / warmup, math.sqrt(warmup / step))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig | LMTrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: noam_factor(step, config.warmup_steps)
    )
