"""A decoding step's linear layers: ``F.linear`` against asr.cpu's few-rows form.

A decoding step multiplies 1 to 10 rows (hypotheses) by every decoder weight. This times both
forms on the machine at hand, for Whisper tiny.en's and base's layer shapes (random weights: only
the shapes matter), and a whole tiny.en decoder step (4 blocks, cross-attention over 1500 encoder
frames, the 51,864-way output layer) for 1, 2, 5 and 8 rows. Prints a table, then one JSON line.

Usage: .venv/bin/python bench/linear_rows.py [--threads 2] [--repeats 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402

from asr import cpu  # noqa: E402
from asr.model import ASRModel  # noqa: E402
from asr.whisper.dims import WhisperDims, whisper_config  # noqa: E402

SHAPES = {  # (out, in)
    "tiny.en output 51864x384": (51864, 384),
    "tiny.en ff in 1536x384": (1536, 384),
    "tiny.en attention 384x384": (384, 384),
    "base output 51864x512": (51864, 512),
}
TINY_EN = WhisperDims(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def step_ms(decoder, rows: int, repeats: int, fast: bool) -> float:
    """One decoder step for ``rows`` hypotheses, with asr.cpu's speedups on or off."""
    memory = torch.randn(rows, 1500, decoder.d_model)
    with torch.inference_mode():
        cache = decoder.init_cache(memory, torch.full((rows,), 1500), capacity=repeats + 8)
        tokens = torch.full((rows,), 50257)
        state = {"cache": cache}

        def step():
            state["cache"] = decoder.step(tokens, state["cache"])[1]

        with cpu.fast(fast):
            return best_ms(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = machine.describe(torch.device("cpu"))
    rows_out = []
    for name, (out, inp) in SHAPES.items():
        weight, bias = torch.randn(out, inp), torch.randn(out)
        for rows in (1, 2, 5, 8, 10, 16):
            x = torch.randn(rows, inp)
            plain = best_ms(lambda: F.linear(x, weight, bias), args.repeats)
            ours = best_ms(lambda: cpu.linear(x, weight, bias), args.repeats)
            rows_out.append({"what": name, "rows": rows, "f_linear_ms": plain, "few_rows_ms": ours})
    decoder = ASRModel(whisper_config(TINY_EN, {}), TINY_EN.n_vocab).decoder.eval()
    for rows in (1, 2, 5, 8):
        plain = step_ms(decoder, rows, args.repeats, fast=False)
        ours = step_ms(decoder, rows, args.repeats, fast=True)
        rows_out.append({"what": "tiny.en decoder step", "rows": rows, "f_linear_ms": plain, "few_rows_ms": ours})

    print(f"CPU: {info['cpu']}; torch CPU capability: {info['cpu_capability']}; {args.threads} threads; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; best of {args.repeats}")  # fmt: skip
    print("| what | rows | F.linear ms | few-rows form ms | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows_out:
        print(f"| {r['what']} | {r['rows']} | {r['f_linear_ms']:.3f} | {r['few_rows_ms']:.3f} | "
              f"{r['f_linear_ms'] / r['few_rows_ms']:.2f}x |")
    line = json.dumps({"bench": "linear_rows", "date": time.strftime("%Y-%m-%d"), **info, "rows": rows_out})
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
