"""How much memory this process can still allocate, and a one-line refusal when work won't fit.

Used before the big allocations (decoding a batch, loading a long recording) so that a bad
option or an unexpected file ends with a message instead of the machine swapping or the
process being killed. The limit is the smallest of ``MemAvailable``, what is left under the
address-space limit (``ulimit -v``), or a CUDA device's free memory.
"""

from __future__ import annotations

import resource
from pathlib import Path

import torch


class MemoryBudgetError(RuntimeError):
    """Decoding (or loading a file) would need more memory than this machine has."""


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory this process can still allocate on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    available = _meminfo_available()
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        available = min(available, max(0, soft - _address_space_used()))
    return available


def _meminfo_available() -> int:
    # Unknown (not Linux): do not refuse.
    return _proc_kib("/proc/meminfo", "MemAvailable:", default=1 << 62)


def _address_space_used() -> int:
    return _proc_kib("/proc/self/status", "VmSize:", default=0)


def _proc_kib(path: str, key: str, default: int) -> int:
    """The bytes of a ``key: N kB`` line of a /proc file, or ``default`` when it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return default


def require(needed: int, what: str, fix: str, device: torch.device | str = "cpu") -> None:
    """Raise MemoryBudgetError("<what> would need about X GiB ...; <fix>") if ``needed`` bytes
    are more than ``device`` has left."""
    available = available_bytes(device)
    if needed > available:
        raise MemoryBudgetError(
            f"{what} would need about {gib(needed)} of memory but only {gib(available)} is available; {fix}"
        )


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"
