"""Everything training carries from one update to the next, and its checkpoint form.

``TrainState`` holds the model, optimizer, schedule, grad scaler and the position (updates taken,
epoch, batches consumed in the epoch). With the RNG states, ``to_checkpoint`` is all that exact
resume needs: the batches of an epoch depend only on (seed, epoch), so a resumed run continues
with the very batches, augmentation and dropout masks the interrupted one would have used.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from asr.checkpoint import model_state
from asr.config import ExperimentConfig, LMConfig, LMTrainConfig, TrainConfig
from asr.model import ASRModel
from asr.nn.lm import TransformerLM
from asr.train.distributed import DistContext
from asr.train.optim import build_optimizer, build_scheduler


@dataclass
class Position:
    step: int = 0  # optimizer updates taken
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # this rank's batches already consumed in the current epoch
    nonfinite_total: int = 0  # updates skipped for a non-finite loss or gradient
    nonfinite_in_a_row: int = 0
    validated_step: int = -1  # the step of the last validation (checkpoints come after it)
    world_size: int = 0  # the ranks batch_in_epoch was counted on (0: not recorded, older checkpoints)


@dataclass
class TrainState:
    model: ASRModel | TransformerLM  # the model itself (what checkpoints hold)
    module: nn.Module  # what the forward pass runs through: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    config: TrainConfig | LMTrainConfig
    device: torch.device
    precision: str  # the precision actually used (see asr.precision)
    ctx: DistContext | None = None  # None: a single process
    position: Position = field(default_factory=Position)
    tokenizer_sha256: str | None = None
    # (state, micro-batch) -> asr.train.step.MicroBatchLoss; None: the recogniser's (speech_losses)
    losses: Callable[[TrainState, Any], Any] | None = None

    @property
    def step(self) -> int:
        return self.position.step

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def model_state(self) -> dict:
        """What a best-K checkpoint holds: the weights, config, vocabulary and tokenizer hash."""
        return model_state(self.model, self.tokenizer_sha256)

    def to_checkpoint(self) -> dict:
        """Everything needed to resume exactly (``last.pt``)."""
        return {
            **self.model_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "position": vars(self.position).copy(),
            "rng": rng_state(),
        }

    def load_checkpoint(self, state: dict) -> None:
        """Continue from ``to_checkpoint``'s output, RNG states included."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.position = Position(**state["position"])
        restore_rng(state["rng"])


def build_train_state(
    config: ExperimentConfig | LMConfig,
    model: ASRModel | TransformerLM,
    device: torch.device,
    precision: str,
    ctx: DistContext | None = None,
) -> TrainState:
    """Move ``model`` to ``device``, wrap it for DDP when ``ctx`` has several ranks, and build
    the optimizer, schedule and grad scaler from ``config.train``."""
    model.to(device).train()
    module: nn.Module = model
    if ctx is not None and ctx.enabled:
        module = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    optimizer = build_optimizer(model, config.train)
    return TrainState(
        model=model,
        module=module,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config.train),
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        config=config.train,
        device=device,
        precision=precision,
        ctx=ctx,
    )


def rng_state() -> dict:
    """The global RNG states (torch CPU and CUDA, Python's random) as checkpointable data."""
    version, values, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": list(values), "python_version": version, "python_gauss": gauss}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
