"""Training throughput on synthetic feature batches (no audio I/O, no frontend).

Times full optimizer steps (forward, joint CTC/attention loss, backward, AdamW) for each
config and precision, and prints a table and JSON.

Usage: .venv/bin/python bench/train_speed.py [--configs tiny,transformer_100h,conformer_100h]
       [--precisions fp32,bf16] [--seconds 10] [--batch 16] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from asr.config import load_config
from asr.model import ASRModel
from asr.train.optim import build_optimizer

CONFIGS = Path(__file__).parents[1] / "configs"
TOKENS_PER_SECOND = 3  # roughly LibriSpeech speech rate in 5000-unit subwords
VOCAB = {"tiny": 128}  # other configs use 5000 units


def measure(name: str, precision: str, seconds: float, batch: int, steps: int, device: torch.device) -> dict:
    config = load_config(CONFIGS / f"{name}.yaml")
    torch.manual_seed(0)
    model = ASRModel(config, VOCAB.get(name, 5000)).to(device).train()
    optimizer = build_optimizer(model, config.train)
    frames = int(seconds * 100)
    feats = torch.randn(batch, frames, config.features.n_mels, device=device)
    feat_lengths = torch.full((batch,), frames, device=device)
    token_count = max(1, int(seconds * TOKENS_PER_SECOND))
    tokens = torch.randint(3, model.vocab_size, (batch, token_count), device=device)
    token_lengths = torch.full((batch,), token_count, device=device)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else torch.autocast(device.type, enabled=False)
    )

    def step() -> None:
        with autocast:
            loss = model.losses(feats, feat_lengths, tokens, token_lengths).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocator, kernels
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = (time.perf_counter() - start) / steps
    return {
        "config": name,
        "precision": precision,
        "device": str(device),
        "batch": batch,
        "seconds_per_utterance": seconds,
        "step_seconds": elapsed,
        "utterances_per_second": batch / elapsed,
        "audio_seconds_per_second": batch * seconds / elapsed,
        "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,transformer_100h,conformer_100h")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each synthetic utterance")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    results = [
        measure(name, precision, args.seconds, args.batch, args.steps, device)
        for name in args.configs.split(",")
        for precision in args.precisions.split(",")
    ]
    table = Table(title=f"training throughput ({device}, {torch.get_num_threads()} threads, batch {args.batch} x {args.seconds:g} s)")
    for column in ("config", "params (M)", "precision", "step (s)", "utt/s", "audio s/s"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["config"], f"{r['parameters_millions']:.1f}", r["precision"], f"{r['step_seconds']:.3f}",
            f"{r['utterances_per_second']:.1f}", f"{r['audio_seconds_per_second']:.1f}",
        )
    Console().print(table)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
