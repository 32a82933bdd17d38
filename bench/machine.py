"""What a benchmark figure was measured on, and the machine's measured matmul peak.

Every figure is printed next to the CPU (or GPU) model, torch's CPU capability (AVX2, AVX512,
...: whether bf16 or AMX kernels exist) and the fp32 sgemm peak measured in the same run, so
that a time can be read as a share of what the hardware does on its best-case op.
"""

from __future__ import annotations

import statistics
import time

import torch

from asr.precision import cpu_model  # one reader of /proc/cpuinfo for the toolkit and the benchmarks


def describe(device: torch.device) -> dict:
    """Device, model name, torch version, CPU capability and threads, for a benchmark's JSON."""
    info = {
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sgemm_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul throughput, GFLOP/s: the median of ``repeats`` size^3 products
    (TF32 off, as torch's default for matmuls)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.empty(size, size, device=device)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def counted_flops(fn) -> int:
    """Matmul, convolution and attention FLOPs of one call of ``fn`` (elementwise ops are not
    counted: the bound is the matmul-only time, a floor no implementation beats)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
