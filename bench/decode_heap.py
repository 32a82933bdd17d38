"""Decoding with glibc's heap settings or with freed memory kept (asr.cpu.keep_freed_memory, as
`asr decode` and `asr transcribe` run): per call, wall time, user and system CPU time and minor
page faults (getrusage), which unlike wall time stay comparable on a busy machine.

The workload is bench/decode_speed.py's (``transformer_100h``, random weights calibrated to ~30
tokens, ``--seconds`` of noise per utterance). The setting is per process: run once with each
``--heap``, alternating. Prints a table row, then one JSON line.

Usage: .venv/bin/python bench/decode_heap.py --heap glibc|kept [--method ctc_greedy] [--batch 1]
       [--repeats 5] [--threads 1] [--config configs/transformer_100h.yaml]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402
from decode_speed import CONFIGS, make_workload  # noqa: E402

from asr import cpu  # noqa: E402
from asr.config import load_config  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.model import ASRModel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heap", choices=("kept", "glibc"), required=True)
    parser.add_argument("--method", default="ctc_greedy")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after one warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=CONFIGS / "transformer_100h.yaml")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.heap == "kept" and not cpu.keep_freed_memory():
        raise SystemExit("--heap kept: not glibc, or ASR_CPU_FAST=0")
    torch.manual_seed(0)
    model = ASRModel(load_config(args.config), 5000).eval()
    workload = argparse.Namespace(steps=None, seconds=args.seconds, tokens_per_second=3.0)
    work, ratio, _ = make_workload(model, workload, args.batch, torch.device("cpu"))
    options = DecodeOptions(method=args.method, beam=10, max_length_ratio=ratio, batch_size=args.batch)
    calls = []
    for i in range(args.repeats + 1):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        work(options)
        after, end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        if i:  # the first call is the warm-up
            calls.append({"wall": end - start, "user": after.ru_utime - before.ru_utime,
                          "sys": after.ru_stime - before.ru_stime, "minflt": after.ru_minflt - before.ru_minflt})  # fmt: skip
    median = {key: statistics.median(c[key] for c in calls) for key in calls[0]}
    print("| decode | heap | minor page faults | system CPU s | user + system CPU s | wall s |")
    print(f"| {args.method}, batch {args.batch} | {args.heap} | {median['minflt']:,.0f} | {median['sys']:.3f} | "
          f"{median['user'] + median['sys']:.3f} | {median['wall']:.3f} |")  # fmt: skip
    print(json.dumps({"bench": "decode_heap", **machine.describe(torch.device("cpu")), **vars(args) | {"config": str(args.config)},
                      "median": median, "calls": calls}))  # fmt: skip


if __name__ == "__main__":
    main()
