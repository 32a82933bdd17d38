"""Decoding speed: real-time factor of each search method, at several batch sizes.

RTF = wall time of ``decode_batch`` (log-mel frontend, encoder and search) / seconds of audio
decoded, after one warm-up run, averaged over ``--repeats`` runs. Inputs are ``--batches``
utterances of ``--seconds`` of noise each (equal lengths: no padding), decoded together.

The weights are random, which would make the searches unrealistically long: an untrained
decoder almost never emits <eos>, so every hypothesis would run to the length limit (one token
per encoder frame, ~250 for 10 s), and an untrained CTC head emits a label on almost every
frame. So the model is made to produce about as many tokens as a trained one would:
``--tokens-per-second`` (3 by default: LibriSpeech speech in 5000 subword units) x seconds.

* attention searches (greedy, beam, joint) run exactly that many steps: ``max_length_ratio``
  = tokens / encoder frames, and the decoder's <eos> logit is lowered so that <eos> comes only
  at that limit (a random decoder disagrees with CTC, so joint search would otherwise end
  wherever CTC's <eos> score happens to beat a random token);
* the CTC head is made peaky (its logits scaled) and its blank logit biased, both set from the
  benchmark's own encoder output, so that CTC emits a label on about that many frames and
  blank, confidently, on the others: what CTC greedy outputs, what rescoring's n-best holds,
  and where joint CTC/attention search finds <eos> likely.

The table reports the mean output length of each method, so a reader sees what was measured.

Usage: .venv/bin/python bench/decode_speed.py [--config configs/transformer_100h.yaml ...]
       [--vocab 5000] [--seconds 10] [--batches 1,16] [--methods ctc_greedy,...] [--beam 10]
       [--ctc-weight 0.3] [--repeats 3] [--device cpu] [--threads N] [--json FILE]
Quick check: --config configs/tiny.yaml --batches 1,2 --seconds 3 --repeats 1
Default: transformer_100h and conformer_100h, one table each (--config is repeatable).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from asr.config import load_config
from asr.decode.options import METHODS, DecodeOptions
from asr.decode.search import decode_batch
from asr.model import ASRModel
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

CONFIGS = Path(__file__).parents[1] / "configs"


PEAKINESS = 4.0  # spread (std, in nats) of "best label minus blank" over frames after scaling
EOS_PENALTY = 1000.0  # subtracted from the decoder's <eos> logit: <eos> only when forced


def calibrate(model: ASRModel, waves: torch.Tensor, lengths: torch.Tensor, tokens: int) -> float:
    """Scale the CTC head to be peaky and bias its blank so that CTC emits a label on ~``tokens``
    frames of each utterance, and keep the decoder from <eos>; return the ``max_length_ratio``
    that ends attention searches after ``tokens`` tokens.

    waves (B, S), lengths (B,) samples: the benchmark's own inputs."""
    with torch.inference_mode():
        encoded, enc_lengths = model.encode(waves, lengths)  # (B, T, D), (B,)
        logits = model.ctc(encoded).float()  # (B, T, V)
    frames = int(enc_lengths.min())
    if tokens >= frames:
        raise SystemExit(f"{tokens} tokens do not fit in {frames} encoder frames; use fewer --tokens-per-second")
    labels = logits.clone()
    labels[..., BLANK_ID] = float("-inf")
    margin = labels.max(dim=-1).values - logits[..., BLANK_ID]  # (B, T): how much a label beats blank
    valid = torch.arange(logits.shape[1], device=logits.device) < enc_lengths[:, None]
    scale = PEAKINESS / float(margin[valid].std())
    # Labels win on the frames whose margin is above this quantile: tokens / frames of them.
    bias = float(torch.quantile(margin[valid], 1.0 - tokens / frames))
    with torch.no_grad():
        model.ctc.bias[BLANK_ID] += bias
        model.ctc.weight.mul_(scale)
        model.ctc.bias.mul_(scale)
        model.decoder.output.bias[SOS_EOS_ID] -= EOS_PENALTY
    return (tokens + 0.5) / frames  # max_token_lengths floors ratio * frames


def measure(
    model: ASRModel, waves: torch.Tensor, lengths: torch.Tensor, options: DecodeOptions,
    seconds: float, repeats: int, device: torch.device,
) -> dict:
    """Time ``decode_batch`` on one batch: one warm-up, then ``repeats`` timed runs."""

    def run() -> tuple[float, list]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        hyps = decode_batch(model, waves, lengths, options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, hyps

    _, hyps = run()  # warm-up: allocator, kernels, lazy inits
    times = [run()[0] for _ in range(repeats)]
    batch = waves.shape[0]
    mean = statistics.mean(times)
    return {
        "method": options.method,
        "batch": batch,
        "beam": 1 if options.method in ("ctc_greedy", "attention_greedy") else options.beam,
        "decode_seconds": mean,  # per batch
        "decode_seconds_runs": times,
        "rtf": mean / (batch * seconds),
        "rtf_best": min(times) / (batch * seconds),
        "utterances_per_second": batch / mean,
        "mean_output_tokens": statistics.mean(len(nbest[0].tokens) for nbest in hyps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", help="repeatable (default: transformer_100h and conformer_100h)")
    parser.add_argument("--vocab", type=int, default=5000, help="output units (the 100h recipe uses 5000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each utterance")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated search methods")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--tokens-per-second", type=float, default=3.0, help="output length to calibrate to")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    reports = [run_config(path, args) for path in args.config or [CONFIGS / "transformer_100h.yaml", CONFIGS / "conformer_100h.yaml"]]
    print(json.dumps(reports if len(reports) > 1 else reports[0]))
    if args.json:
        args.json.write_text(json.dumps(reports if len(reports) > 1 else reports[0], indent=1) + "\n")


def run_config(config_path: Path, args: argparse.Namespace) -> dict:
    """Measure every method and batch size for one config; print its table; return the report."""
    args = argparse.Namespace(**{**vars(args), "config": config_path})
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    log = Console(stderr=True)

    torch.manual_seed(args.seed)
    config = load_config(args.config)
    model = ASRModel(config, args.vocab).to(device).eval()
    samples = int(args.seconds * config.features.sample_rate)
    all_waves = 0.1 * torch.randn(max(batches), samples, device=device)  # (B, S)
    all_lengths = torch.full((max(batches),), samples, device=device)
    tokens = max(1, round(args.tokens_per_second * args.seconds))
    ratio = calibrate(model, all_waves, all_lengths, tokens)

    results = []
    for method in methods:
        for batch in batches:
            options = DecodeOptions(
                method=method, beam=args.beam, ctc_weight=args.ctc_weight, length_norm=True,
                max_length_ratio=ratio, batch_size=batch,
            )  # fmt: skip
            result = measure(model, all_waves[:batch], all_lengths[:batch], options, args.seconds, args.repeats, device)
            log.log(f"{method} batch {batch}: RTF {result['rtf']:.4f}, {result['mean_output_tokens']:.1f} tokens")
            results.append(result)

    settings = {
        "config": str(args.config),
        "vocab": args.vocab,
        "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "seconds": args.seconds,
        "beam": args.beam,
        "ctc_weight": args.ctc_weight,
        "repeats": args.repeats,
        "target_tokens": tokens,
        "max_length_ratio": ratio,
        "weights": "random; CTC peaky with blank biased for ~target_tokens labels; decoder <eos> only at the "
        "length limit of target_tokens",
    }
    table = Table(
        title=f"decoding speed: {args.config.stem} ({settings['parameters_millions']:.1f}M params, vocab {args.vocab}), "
        f"{device}, {settings['threads']} threads, {args.seconds:g} s utterances, beam {args.beam}, "
        f"ctc weight {args.ctc_weight:g}\nrandom weights made to output ~{tokens} tokens "
        f"({args.tokens_per_second:g}/s: peaky CTC with biased blank; attention searches run {tokens} steps)",
    )
    table.add_column("method", no_wrap=True, min_width=len("attention_rescoring"))
    for column in ("batch", "RTF", "RTF best", "s/batch", "utt/s", "mean tokens"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["method"], str(r["batch"]), f"{r['rtf']:.4f}", f"{r['rtf_best']:.4f}", f"{r['decode_seconds']:.3f}",
            f"{r['utterances_per_second']:.2f}", f"{r['mean_output_tokens']:.1f}",
        )  # fmt: skip
    Console().print(table)
    return {"settings": settings, "results": results}


if __name__ == "__main__":
    main()
