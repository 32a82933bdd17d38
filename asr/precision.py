"""Numeric precision of training and decoding: autocast for bf16/fp16, and a guard against slow
bf16 on CPUs.

A CPU without native bf16 arithmetic (AMX or AVX512-BF16) emulates it: one bf16 autocast step of
the 100h Transformer took 165 s there against 4.5 s in fp32. So a CPU run asked for bf16 on such a
machine runs fp32 instead and says so once (training also records the choice in its log).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path

import torch


BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


class PrecisionError(ValueError):
    """A precision the device cannot run (fp16 without CUDA)."""


@dataclass(frozen=True)
class Precision:
    requested: str  # fp32, bf16 or fp16, as configured
    used: str  # what runs
    reason: str = ""  # why ``used`` differs from ``requested`` ("" when it does not)


@functools.lru_cache(maxsize=8)
def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo is absent); read once
    per file (decoding asks for every batch)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name, e.g. 'AMD EPYC 9454' (or the platform's processor string)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_capability() -> str:
    """What torch dispatches to on this CPU (e.g. AVX2, AVX512), plus native bf16 flags if any."""
    capability = torch.backends.cpu.get_cpu_capability()
    native = sorted(set(BF16_FLAGS) & cpu_flags())
    return capability + (f"+{'+'.join(native)}" if native else "")


def has_native_bf16(capability: str | None = None, flags: set[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AMX or AVX512-BF16)."""
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    flags = cpu_flags() if flags is None else flags
    return "AMX" in capability.upper() or bool(set(BF16_FLAGS) & flags)


def resolve_precision(
    requested: str, device: torch.device, native_bf16: bool | None = None, key: str = "train.precision"
) -> Precision:
    """The precision to run with on ``device``; fp16 without CUDA is refused (``key`` names the
    setting in the message)."""
    if requested == "fp16" and device.type != "cuda":
        raise PrecisionError(f"{key}=fp16 needs a CUDA device; use bf16 (or fp32) on CPU")
    if requested == "bf16" and device.type == "cpu":
        native = has_native_bf16() if native_bf16 is None else native_bf16
        if not native:
            return Precision(
                requested, "fp32",
                "this CPU has no native bf16 (no AMX or AVX512-BF16): emulated bf16 is far slower than fp32",
            )  # fmt: skip
    return Precision(requested, requested)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of a forward pass in ``precision`` (none for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_autocast_on(x: torch.Tensor) -> bool:
    """Whether ``x`` is on the CPU while CPU autocast is on: the few ops that bf16 makes less
    exact on a CPU without making them faster there (asr.nn.attention, the Whisper stem in
    asr.nn.subsampling) then turn autocast off and compute in fp32."""
    return x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
