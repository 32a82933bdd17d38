"""torch.distributed set-up: the same `asr train` command runs alone or under torchrun.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


class DeviceError(ValueError):
    """A --device that is not a device name, or names one this machine does not have."""


def pick_device(requested: str | None, local_rank: int = 0) -> torch.device:
    if requested and requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise DeviceError(f"--device {requested!r} is not a device; use auto, cpu, cuda or cuda:N") from None
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", local_rank)
        _check_available(device, requested)
        return device
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def _check_available(device: torch.device, requested: str) -> None:
    if device.type == "cpu":
        return
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.index is not None and device.index < count:
            return
        have = f"{count} CUDA device(s)" if count else "no CUDA device"
        raise DeviceError(f"--device {requested}: this machine has {have}; use --device cpu or auto")
    module = getattr(torch, device.type, None)
    if module is None or not getattr(module, "is_available", lambda: False)():
        raise DeviceError(f"--device {requested}: no {device.type} device on this machine; use --device cpu or auto")


def setup_distributed(requested_device: str | None = None) -> DistContext:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, device)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True if ``flag`` is true on any rank (so every rank takes the same branch)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
