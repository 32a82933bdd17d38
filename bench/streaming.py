"""Streaming recognition: WER and latency of chunked decoding against full context.

For each utterance of ``--manifest`` the audio is fed to :class:`asr.decode.streaming.RecognitionStream`
in pieces of ``--chunk-ms`` as if it arrived live, and the final text (attention rescoring at the
end) is scored. The full-context row decodes the same utterances offline with attention
rescoring (``asr decode --method attention_rescoring``), with the same beam and CTC weight.

Latencies are in milliseconds:
* first token: audio time at which the first non-empty partial appeared, minus the start of
  the first word in the final result (its CTC alignment): how far behind the speech the first
  word is shown. Includes the wait for a chunk to fill.
* final: wall time of ``finish()`` after the last audio arrived (the last partial chunk through
  the encoder, attention rescoring, word alignment): how long after the end of speech the final
  text is there, when the stream ends at the end of speech.
* per chunk: mean wall time to process one chunk (must stay under the chunk's duration to keep
  up with live audio).

Usage: .venv/bin/python bench/streaming.py --exp EXP --manifest M [--chunks 320,640,1280]
       [--beam 10] [--ctc-weight 0.5] [--limit N] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from asr.audio import load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.decode.rescore import attention_rescoring  # noqa: E402
from asr.decode.streaming import RecognitionStream, StreamOptions  # noqa: E402
from asr.experiment import load_for_inference  # noqa: E402
from asr.metrics import Transcripts, score  # noqa: E402


def stream_one(model, tokenizer, wave: torch.Tensor, options: StreamOptions, rate: int) -> dict:
    stream = RecognitionStream(model, tokenizer, options)
    piece = round(options.chunk_ms / 1000 * rate)
    first_partial_s, chunk_times = None, []
    for start in range(0, wave.numel(), piece):
        began = time.perf_counter()
        partial = stream.accept(wave[start : start + piece])
        chunk_times.append(time.perf_counter() - began)
        if partial and first_partial_s is None:
            first_partial_s = min(start + piece, wave.numel()) / rate
    began = time.perf_counter()
    result = stream.finish()
    final_s = time.perf_counter() - began
    words = result.words
    first_token = None
    if words:
        shown = first_partial_s if first_partial_s is not None else wave.numel() / rate
        first_token = 1000 * (shown - words[0].start)
    return {"text": result.text, "first_token_ms": first_token, "final_ms": 1000 * final_s, "chunk_ms": chunk_times}


def offline(model, tokenizer, wave: torch.Tensor, beam: int, ctc_weight: float) -> str:
    with torch.inference_mode():
        memory, lengths = model.encode(wave[None], torch.tensor([wave.numel()]))
        best = attention_rescoring(
            model.decoder, memory, lengths, model.ctc_log_probs(memory),
            DecodeOptions(method="attention_rescoring", beam=beam, ctc_weight=ctc_weight),
        )[0][0]
    return tokenizer.decode(best.tokens)


def wer(refs: dict[str, str], hyps: dict[str, str]) -> float:
    return score(Transcripts(refs), Transcripts(hyps)).words.rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--chunks", default="320,640,1280")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer, config = load_for_inference(args.exp)
    rate = config.features.sample_rate
    utterances = read_manifest(args.manifest)[: args.limit or None]
    waves = {u.id: load_audio(u.audio, rate)[0] for u in utterances}
    refs = {u.id: u.text for u in utterances}
    audio_s = sum(w.numel() for w in waves.values()) / rate
    rows = []
    began = time.perf_counter()
    full = {i: offline(model, tokenizer, w, args.beam, args.ctc_weight) for i, w in waves.items()}
    rows.append({"chunk_ms": "full context", "wer": wer(refs, full), "rtf": (time.perf_counter() - began) / audio_s})
    for chunk in [float(c) for c in args.chunks.split(",")]:
        options = StreamOptions(chunk_ms=chunk, beam=args.beam, ctc_weight=args.ctc_weight, endpoint_ms=0)
        began = time.perf_counter()
        runs = {i: stream_one(model, tokenizer, w, options, rate) for i, w in waves.items()}
        elapsed = time.perf_counter() - began
        firsts = [r["first_token_ms"] for r in runs.values() if r["first_token_ms"] is not None]
        rows.append({
            "chunk_ms": chunk, "wer": wer(refs, {i: r["text"] for i, r in runs.items()}), "rtf": elapsed / audio_s,
            "first_token_ms_median": statistics.median(firsts) if firsts else None,
            "final_ms_median": statistics.median(r["final_ms"] for r in runs.values()),
            "final_ms_max": max(r["final_ms"] for r in runs.values()),
            "per_chunk_ms_mean": 1000 * statistics.mean(t for r in runs.values() for t in r["chunk_ms"]),
        })  # fmt: skip
    machine = describe(torch.device("cpu"))
    print(f"# {len(utterances)} utterances, {audio_s:.1f} s of audio; {machine['cpu']} ({machine['cpu_capability']}), {args.threads} threads")
    print("| chunk (ms) | WER | RTF | first token (ms, median) | final (ms, median / max) | per chunk (ms) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if row["chunk_ms"] == "full context":
            print(f"| full context (offline rescoring) | {100 * row['wer']:.1f}% | {row['rtf']:.3f} | - | - | - |")
            continue
        first = f"{row['first_token_ms_median']:.0f}" if row["first_token_ms_median"] is not None else "-"
        print(f"| {row['chunk_ms']:.0f} | {100 * row['wer']:.1f}% | {row['rtf']:.3f} | {first} | "
              f"{row['final_ms_median']:.0f} / {row['final_ms_max']:.0f} | {row['per_chunk_ms_mean']:.1f} |")
    record = {"bench": "streaming", "exp": args.exp, "manifest": args.manifest, "utterances": len(utterances), "machine": machine, "rows": rows}
    print(json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
