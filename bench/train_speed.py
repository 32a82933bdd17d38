"""Training throughput of the step `asr train` takes, on synthetic batches.

Times ``asr.train.step.train_step`` itself (frontend, joint CTC/attention loss, backward, gradient
clipping, grad scaler, AdamW and schedule) for each config and precision. Next to every figure it
prints the CPU model and capability, the FLOP-bound time (the step's matmul/conv FLOPs, counted by
torch.utils.flop_counter, over the matmul peak of that precision measured in the same run; for
fp32 that is the sgemm peak) and the share of that peak
reached, and the peak resident memory during the timed steps.

bf16 goes through the same precision guard as `asr train`: on a CPU without native bf16 it runs
fp32, and the precision column says so ("bf16->fp32").

Usage: .venv/bin/python bench/train_speed.py [--configs tiny,transformer_100h,conformer_100h]
       [--precisions fp32,bf16] [--seconds 10] [--batch 16] [--tokens 0] [--steps 3] [--accum 1]
       [--device cpu|cuda] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from asr.config import load_config
from asr.data.dataset import Batch
from asr.model import ASRModel
from asr.precision import cpu_capability, cpu_model, resolve_precision
from asr.train.state import build_train_state
from asr.train.step import train_step

CONFIGS = Path(__file__).parents[1] / "configs"
TOKENS_PER_SECOND = 3  # roughly LibriSpeech speech rate in 5000-unit subwords
VOCAB = {"tiny": 128}  # other configs use 5000 units


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """Measured matmul rate in GFLOP/s (best of ``repeats``; fp32 = sgemm), the reference for
    'share of peak'. Measured right before each figure: on a shared machine the rate varies."""
    size = 8192 if device.type == "cuda" else 2048  # a GPU needs a larger product to reach its peak
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def synthetic_batch(seconds: float, batch: int, vocab: int, sample_rate: int, tokens: int = 0) -> Batch:
    """``batch`` noise utterances of ``seconds`` with ``tokens`` random targets (0: 3 per second)."""
    samples = int(seconds * sample_rate)
    tokens = tokens or max(1, int(seconds * TOKENS_PER_SECOND))
    generator = torch.Generator().manual_seed(0)
    return Batch(
        ids=[f"utt{i}" for i in range(batch)],
        waves=0.1 * torch.randn(batch, samples, generator=generator),
        wave_lengths=torch.full((batch,), samples),
        tokens=torch.randint(3, vocab, (batch, tokens), generator=generator),
        token_lengths=torch.full((batch,), tokens),
    )


def peak_rss_reset() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM), so the next reading covers what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, precision: str, args: argparse.Namespace, device: torch.device) -> dict:
    config = load_config(CONFIGS / f"{name}.yaml", [f"train.precision={precision}", f"train.accum_steps={args.accum}"])
    used = resolve_precision(precision, device)
    torch.manual_seed(0)
    model = ASRModel(config, VOCAB.get(name, 5000))
    state = build_train_state(config, model, device, used.used)
    batch = synthetic_batch(args.seconds, args.batch, model.vocab_size, config.features.sample_rate, args.tokens)
    batches = [batch] * args.accum
    with FlopCounterMode(display=False) as counter:  # also the warm-up step (allocator, kernels)
        train_step(state, batches)
    flops = counter.get_total_flops()
    peak = gemm_peak(device, {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[used.used])
    synchronize(device)
    peak_rss_reset()
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(state, batches)
    synchronize(device)
    elapsed = (time.perf_counter() - start) / args.steps
    utterances = args.batch * args.accum
    flop_bound = flops / (peak * 1e9)
    return {
        "config": name,
        "precision": precision,
        "precision_used": used.used,
        "device": str(device),
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_capability": cpu_capability(),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "accum_steps": args.accum,
        "seconds_per_utterance": args.seconds,
        "step_seconds": elapsed,
        "utterances_per_second": utterances / elapsed,
        "audio_seconds_per_second": utterances * args.seconds / elapsed,
        "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6,
        "step_gflop": flops / 1e9,
        "gemm_peak_gflops": peak,  # of the precision used (fp32: sgemm)
        "flop_bound_seconds": flop_bound,
        "share_of_peak": flop_bound / elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


def print_table(results: list[dict], args: argparse.Namespace, device: torch.device) -> None:
    first = results[0]
    gpu = f"{first['gpu']}; " if first["gpu"] else ""
    title = (
        f"train_step throughput ({device}; {gpu}{first['cpu']}, {first['cpu_capability']}; {first['threads']} threads; "
        f"batch {args.batch} x {args.seconds:g} s, accum {args.accum}; 'of peak': of the measured gemm peak of that precision)"
    )
    table = Table(title=title)
    columns = ("config", "params (M)", "precision", "step (s)", "GFLOP", "gemm peak (GFLOP/s)", "FLOP-bound (s)", "of peak", "utt/s", "audio s/s", "peak RSS (MB)", "cpu capability")
    for column in columns:
        table.add_column(column, justify="right")
    for r in results:
        shown = r["precision"] if r["precision_used"] == r["precision"] else f"{r['precision']}->{r['precision_used']}"
        table.add_row(
            r["config"], f"{r['parameters_millions']:.1f}", shown, f"{r['step_seconds']:.3f}", f"{r['step_gflop']:.1f}",
            f"{r['gemm_peak_gflops']:.0f}", f"{r['flop_bound_seconds']:.3f}", f"{100 * r['share_of_peak']:.0f}%", f"{r['utterances_per_second']:.1f}",
            f"{r['audio_seconds_per_second']:.1f}", f"{r['peak_rss_mb']:.0f}", r["cpu_capability"],
        )  # fmt: skip
    Console(width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,transformer_100h,conformer_100h")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each synthetic utterance")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=0, help="target tokens per utterance (0: 3 per second)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--accum", type=int, default=1, help="micro-batches per update (train.accum_steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    results = [
        measure(name, precision, args, device)
        for name in args.configs.split(",")
        for precision in args.precisions.split(",")
    ]
    print_table(results, args, device)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
