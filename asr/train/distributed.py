"""torch.distributed set-up: the same `asr train` command runs alone or under torchrun.

torchrun (or Slurm's srun with the env:// variables, docs/training.md) sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them this is a single process.

Timeouts: a rank that dies or hangs must end the job, not leave the others waiting forever in a
collective (gloo's default wait is 30 minutes, NCCL's 10, and users of other toolkits report
jobs hanging for hours). Every collective of training runs on the default group with
``train.dist_timeout`` seconds; past it gloo raises, and NCCL's watchdog aborts the process
(TORCH_NCCL_ASYNC_ERROR_HANDLING, on by default). The waits in which rank 0 works alone (CMVN
statistics, validation, writing a checkpoint) go through a gloo group of their own with the
longer ``train.dist_wait_timeout``, so that a long validation does not count as a hang.
"""

from __future__ import annotations

import datetime
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
    wait_group: object | None = None  # gloo group of the waits on rank 0 (None: the default group)

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


def setup_distributed(
    requested_device: str | None = None, timeout: float = 600.0, wait_timeout: float = 7200.0
) -> DistContext:
    """This process's rank and device; under torchrun, joins the process group with collectives
    that give up after ``timeout`` seconds (waits on rank 0 after ``wait_timeout``)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    wait_group = None
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
        wait_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=wait_timeout))
    return DistContext(rank, world_size, local_rank, device, wait_group)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank, as long as ``train.dist_wait_timeout`` (rank 0 may be validating)."""
    if ctx.enabled:
        dist.barrier(group=ctx.wait_group)


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
