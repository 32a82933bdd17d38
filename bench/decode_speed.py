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

``--steps N`` instead runs the peer benchmark's workload (../shared/bench/peer_bench.py, the
ESPnet/SpeechBrain comparison): random 80-dim features of ``--seconds`` (100 frames per second)
go through the encoder and the search (no frontend), the CTC head keeps its random weights, and
the decoder's <eos> logit is lowered by 1e4 so that attention searches run exactly N steps.

Next to each time: the FLOP-bound time (matmul, convolution and attention FLOPs of the same call,
counted by torch's FlopCounterMode, over the fp32 sgemm peak measured in the same run) and the
share of that peak reached (bound / time). At batch 1 the decoder's matmuls have 10 rows
(one per hypothesis) and are bound by reading the weights, not by FLOPs: expect a low share.
The CPU model and torch's CPU capability are printed with the table.

Freed memory stays in the process (``asr.cpu.keep_freed_memory``), as in `asr decode` and `asr
transcribe`; ``--heap glibc`` leaves glibc's defaults (what a program using the library gets
unless it makes that call). ``ASR_CPU_FAST=0`` measures without asr.cpu's speedups.

Usage: .venv/bin/python bench/decode_speed.py [--config configs/transformer_100h.yaml ...]
       [--vocab 5000] [--seconds 10] [--batches 1,16] [--methods ctc_greedy,...] [--beam 10]
       [--ctc-weight 0.3] [--steps N] [--repeats 3] [--device cpu|cuda] [--threads N] [--heap kept|glibc]
       [--json FILE]
Peer workload: --steps 60 --methods ctc_greedy,attention_beam,joint_beam --threads 2
Quick check: --config configs/tiny.yaml --batches 1,2 --seconds 3 --repeats 1
--config is repeatable; by default transformer_100h and conformer_100h are measured, a table each.
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

import machine
from asr import cpu
from asr.config import load_config
from asr.decode.options import METHODS, DecodeOptions
from asr.decode.search import decode_batch, search_encoded
from asr.model import ASRModel
from asr.nn.masks import NEG_INF, lengths_to_mask
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID

CONFIGS = Path(__file__).parents[1] / "configs"


PEAKINESS = 4.0  # spread (std, in nats) of "best label minus blank" over frames after scaling
EOS_PENALTY = 1000.0  # subtracted from the decoder's <eos> logit: <eos> only when forced
PEER_EOS_PENALTY = 1e4  # what peer_bench.py subtracts, for ESPnet and asr alike
FRAMES_PER_SECOND = 100  # the peer workload's features (10 ms shift)


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
    labels[..., BLANK_ID] = NEG_INF
    margin = labels.max(dim=-1).values - logits[..., BLANK_ID]  # (B, T): how much a label beats blank
    valid = lengths_to_mask(enc_lengths, logits.shape[1])
    scale = PEAKINESS / float(margin[valid].std())
    # Labels win on the frames whose margin is above this quantile: tokens / frames of them.
    bias = float(torch.quantile(margin[valid], 1.0 - tokens / frames))
    with torch.no_grad():
        model.ctc.bias[BLANK_ID] += bias
        model.ctc.weight.mul_(scale)
        model.ctc.bias.mul_(scale)
        model.decoder.output.bias[SOS_EOS_ID] -= EOS_PENALTY
    return (tokens + 0.5) / frames  # max_token_lengths floors ratio * frames


class Workload:
    """The inputs of one batch and how to decode them: waveforms through ``decode_batch``, or
    (peer mode) features through the encoder and ``search_encoded``."""

    def __init__(self, model: ASRModel, inputs: torch.Tensor, lengths: torch.Tensor, features: bool):
        self.model, self.inputs, self.lengths, self.features = model, inputs, lengths, features

    def __call__(self, options: DecodeOptions) -> list:
        if not self.features:
            return decode_batch(self.model, self.inputs, self.lengths, options)
        with torch.inference_mode():
            encoded, enc_lengths = self.model.encoder(self.inputs, self.lengths)
            return search_encoded(self.model, encoded, enc_lengths, options)


def measure(work: Workload, options: DecodeOptions, seconds: float, repeats: int, device: torch.device, peak: float) -> dict:
    """Time one batch: one warm-up, then ``repeats`` timed runs; count its FLOPs once."""

    def run() -> tuple[float, list]:
        machine.synchronize(device)
        start = time.perf_counter()
        hyps = work(options)
        machine.synchronize(device)
        return time.perf_counter() - start, hyps

    _, hyps = run()  # warm-up: allocator, kernels, lazy inits
    times = [run()[0] for _ in range(repeats)]
    flops = machine.counted_flops(lambda: work(options))
    batch = work.inputs.shape[0]
    mean = statistics.mean(times)
    bound = flops / (peak * 1e9)
    return {
        "method": options.method,
        "batch": batch,
        "beam": 1 if options.method in ("ctc_greedy", "attention_greedy") else options.beam,
        "decode_seconds": mean,  # per batch
        "decode_seconds_runs": times,
        "seconds_per_utterance": mean / batch,
        "rtf": mean / (batch * seconds),
        "rtf_best": min(times) / (batch * seconds),
        "utterances_per_second": batch / mean,
        "gflop": flops / 1e9,
        "flop_bound_seconds": bound,
        "share_of_peak": bound / mean,
        "mean_output_tokens": statistics.mean(len(nbest[0].tokens) for nbest in hyps),
    }


def make_workload(model: ASRModel, args: argparse.Namespace, batch: int, device: torch.device) -> tuple[Workload, float, int]:
    """The largest batch of equal-length utterances, the ``max_length_ratio`` that ends
    attention searches at the target length, and that length in tokens. Changes the model's
    output layers as the module docstring says."""
    config = model.config
    if args.steps:  # peer workload: features, random CTC, exactly args.steps steps
        frames = int(args.seconds * FRAMES_PER_SECOND)
        feats = torch.randn(batch, frames, config.features.n_mels, device=device)
        lengths = torch.full((batch,), frames, device=device)
        with torch.inference_mode():
            enc_frames = int(model.encoder(feats[:1], lengths[:1])[1][0])
            model.decoder.output.bias[SOS_EOS_ID] -= PEER_EOS_PENALTY
        return Workload(model, feats, lengths, features=True), (args.steps + 0.5) / enc_frames, args.steps
    samples = int(args.seconds * config.features.sample_rate)
    waves = 0.1 * torch.randn(batch, samples, device=device)  # (B, S)
    lengths = torch.full((batch,), samples, device=device)
    tokens = max(1, round(args.tokens_per_second * args.seconds))
    ratio = calibrate(model, waves, lengths, tokens)
    return Workload(model, waves, lengths, features=False), ratio, tokens


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", help="repeatable (default: transformer_100h, conformer_100h)")
    parser.add_argument("--vocab", type=int, default=5000, help="output units (the 100h recipe uses 5000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each utterance")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated search methods")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--tokens-per-second", type=float, default=3.0, help="output length to calibrate to")
    parser.add_argument("--steps", type=int, help="the peer workload: features in, exactly this many search steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--heap", choices=("kept", "glibc"), default="kept",
        help="kept: freed memory stays in the process (asr.cpu.keep_freed_memory, as `asr decode` does); glibc: its defaults",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.heap == "kept":
        cpu.keep_freed_memory()
    configs = args.config or [CONFIGS / "transformer_100h.yaml", CONFIGS / "conformer_100h.yaml"]
    reports = [run_config(argparse.Namespace(**{**vars(args), "config": path})) for path in configs]
    output = reports[0] if len(reports) == 1 else reports
    print(json.dumps(output))
    if args.json:
        args.json.write_text(json.dumps(output, indent=1) + "\n")


def run_config(args: argparse.Namespace) -> dict:
    """Every method and batch size for the one config ``args.config``: table printed, report returned."""
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    log = Console(stderr=True)

    torch.manual_seed(args.seed)
    model = ASRModel(load_config(args.config), args.vocab).to(device).eval()
    work, ratio, tokens = make_workload(model, args, max(batches), device)
    peak = machine.sgemm_peak(device)
    log.log(f"fp32 sgemm peak {peak:.1f} GFLOP/s on {device}")
    results = []
    for method in methods:
        for batch in batches:
            options = DecodeOptions(
                method=method, beam=args.beam, ctc_weight=args.ctc_weight, length_norm=not args.steps,
                max_length_ratio=ratio, batch_size=batch,
            )  # fmt: skip
            part = Workload(model, work.inputs[:batch], work.lengths[:batch], work.features)
            result = measure(part, options, args.seconds, args.repeats, device, peak)
            log.log(f"{method} batch {batch}: RTF {result['rtf']:.4f}, {result['mean_output_tokens']:.1f} tokens")
            results.append(result)
    settings = {
        **machine.describe(device),
        "sgemm_peak_gflops": peak,
        "config": str(args.config),
        "vocab": args.vocab,
        "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6,
        "seconds": args.seconds,
        "beam": args.beam,
        "ctc_weight": args.ctc_weight,
        "repeats": args.repeats,
        "target_tokens": tokens,
        "forced_steps": args.steps,
        "max_length_ratio": ratio,
        "heap": args.heap,
        "cpu_fast": cpu.is_fast(),
        "weights": (
            f"random; features in; decoder <eos> lowered by {PEER_EOS_PENALTY:g} (peer workload)" if args.steps else
            "random; CTC peaky with blank biased for ~target_tokens labels; decoder <eos> only at the "
            "length limit of target_tokens"
        ),
    }  # fmt: skip
    print_table(args, settings, results)
    return {"settings": settings, "results": results}


def print_table(args: argparse.Namespace, settings: dict, results: list[dict]) -> None:
    workload = (
        f"peer workload: features in, random CTC, attention searches forced to {args.steps} steps"
        if args.steps else
        f"random weights made to output ~{settings['target_tokens']} tokens ({args.tokens_per_second:g}/s: "
        f"peaky CTC with biased blank; attention searches run {settings['target_tokens']} steps)"
    )  # fmt: skip
    processor = settings.get("gpu", settings["cpu"])
    table = Table(
        title=f"decoding speed: {args.config.stem} ({settings['parameters_millions']:.1f}M params, vocab {args.vocab}), "
        f"{settings['device']} ({processor}, CPU capability {settings['cpu_capability']}), "
        f"{settings['threads']} threads, fp32 sgemm peak {settings['sgemm_peak_gflops']:.0f} GFLOP/s\n"
        f"{args.seconds:g} s utterances, beam {args.beam}, ctc weight {args.ctc_weight:g}; {workload}",
    )
    table.add_column("method", no_wrap=True, min_width=len("attention_rescoring"))
    for column in ("batch", "RTF", "RTF best", "s/batch", "s/utt", "FLOP-bound s/utt", "% of peak", "mean tokens"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r["method"], str(r["batch"]), f"{r['rtf']:.4f}", f"{r['rtf_best']:.4f}", f"{r['decode_seconds']:.3f}",
            f"{r['seconds_per_utterance']:.3f}", f"{r['flop_bound_seconds'] / r['batch']:.3f}",
            f"{100 * r['share_of_peak']:.0f}", f"{r['mean_output_tokens']:.1f}",
        )  # fmt: skip
    Console(width=180).print(table)


if __name__ == "__main__":
    main()
