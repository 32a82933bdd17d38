"""Where a training step's time goes: torch.profiler over ``train_step`` on a synthetic batch.

Prints the top operators by self CPU (or CUDA) time, and the same grouped into coarse parts
(matmul, conv, softmax/log-softmax, CTC, layer norm, elementwise, optimizer), so that a change
can be aimed at what costs most.

Usage: .venv/bin/python bench/train_profile.py [--config transformer_100h] [--batch 8]
       [--seconds 10] [--tokens 60] [--precision fp32] [--device cpu] [--top 25]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import CONFIGS, VOCAB, synthetic_batch  # noqa: E402

from asr.config import load_config  # noqa: E402
from asr.model import ASRModel  # noqa: E402
from asr.precision import cpu_capability, cpu_model, resolve_precision  # noqa: E402
from asr.train.state import build_train_state  # noqa: E402
from asr.train.step import train_step  # noqa: E402

PARTS = (  # first match wins
    ("matmul", ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm")),
    ("attention (SDPA)", ("scaled_dot_product", "flash_attention")),
    ("conv", ("conv", "convolution", "mkldnn_convolution")),
    ("softmax / log-softmax", ("softmax",)),
    ("CTC loss", ("ctc",)),
    ("cross entropy / nll", ("nll", "cross_entropy")),
    ("layer norm", ("layer_norm",)),
    ("optimizer (AdamW) and clipping", ("_foreach", "adam", "norm")),
    ("STFT / mel frontend", ("stft", "fft")),
    ("copies and casts", ("copy_", "to", "contiguous", "clone", "cat", "_to_copy")),
)


def part_of(name: str) -> str:
    key = name.lower().removeprefix("aten::")
    for part, patterns in PARTS:
        if any(key == p or key.startswith(p) or f"_{p}" in key or p in key.split("_") for p in patterns):
            return part
    return "other (elementwise, masks, indexing)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="transformer_100h")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = load_config(CONFIGS / f"{args.config}.yaml", [f"train.precision={args.precision}"])
    used = resolve_precision(args.precision, device).used
    torch.manual_seed(0)
    model = ASRModel(config, VOCAB.get(args.config, 5000))
    state = build_train_state(config, model, device, used)
    batch = synthetic_batch(args.seconds, args.batch, model.vocab_size, config.features.sample_rate, args.tokens)
    train_step(state, [batch])  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_step(state, [batch])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{args.config}, {args.batch} x {args.seconds:g} s, {args.tokens} tokens, {used}, {device}; "
          f"{cpu_model()} ({cpu_capability()}), {torch.get_num_threads()} threads")
    print(prof.key_averages().table(sort_by=sort, row_limit=args.top))
    parts: dict[str, float] = defaultdict(float)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    for event in events:
        parts[part_of(event.key)] += event.self_device_time_total if device.type == "cuda" else event.self_cpu_time_total
    total = sum(parts.values())
    print("self time by part:")
    for part, micros in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {part:40s} {micros / 1e6:8.3f} s  {100 * micros / total:5.1f}%")


if __name__ == "__main__":
    main()
