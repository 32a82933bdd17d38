"""Zero-shot Whisper with shorter fixed contexts: how short can the padded window be before the
WER moves? One table (context seconds -> WER, RTF, transcripts identical to the 30 s ones).

Usage: .venv/bin/python bench/whisper_context.py --manifest M [--exp EXP] [--utterances 60]
           [--contexts 30,20,15,10,5,0] [--threads 1]

The model is tiny.en (the bundled copy, imported on the fly) unless --exp names another. A
context of C seconds pads every input with zero feature frames to C * 100 frames and slices the
encoder positions to C * 50 (0: unpadded, each utterance's own frames). WER is over digit words
(see bench/whisper_speed.py), so use a digits manifest (recipes/digits) or any manifest whose
references it fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from whisper_speed import wer  # noqa: E402

from asr.audio import load_audio  # noqa: E402
from asr.data.dataset import pad  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.decode.search import decode_batch  # noqa: E402
from asr.experiment import load_for_inference  # noqa: E402
from asr.whisper.frontend import WhisperLogMel  # noqa: E402


def transcribe(model, tokenizer, waves: list[torch.Tensor]) -> list[str]:
    texts = []
    options = DecodeOptions(method="attention_greedy", batch_size=8)
    for first in range(0, len(waves), 8):
        batch, lengths = pad(waves[first : first + 8])
        texts += [tokenizer.decode(n[0].tokens) for n in decode_batch(model, batch, lengths, options)]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--exp", type=Path, default=None)
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--contexts", default="30,20,15,10,5,0")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        exp = args.exp
        if exp is None:
            from asr.whisper.convert import import_whisper

            exp = Path(tmp) / "tiny.en"
            import_whisper("tiny.en", exp)
        model, tokenizer, config = load_for_inference(exp)
    utterances = read_manifest(args.manifest)[: args.utterances]
    waves = [load_audio(u.audio, 16000)[0] for u in utterances]
    audio = sum(w.numel() for w in waves) / 16000
    rows, reference = [], None
    for context in (float(c) for c in args.contexts.split(",")):
        model.frontend = WhisperLogMel(dataclasses.replace(config.features, pad_seconds=context))
        start = time.perf_counter()
        texts = transcribe(model, tokenizer, waves)
        seconds = time.perf_counter() - start
        reference = reference or texts
        rows.append({"context_s": context, "wer": wer([u.text for u in utterances], texts), "rtf": seconds / audio,
                     "same_as_first": sum(a == b for a, b in zip(texts, reference))})  # fmt: skip
        print(f"context {context:g} s: WER {100 * rows[-1]['wer']:.1f}%", file=sys.stderr, flush=True)
    print(f"{len(utterances)} utterances ({audio:.0f} s) of {args.manifest}; {time.strftime('%Y-%m-%d')}")
    print("| context | WER | RTF | transcripts identical to the first row's |")
    print("|---|---|---|---|")
    for r in rows:
        name = "unpadded" if r["context_s"] == 0 else f"{r['context_s']:g} s"
        print(f"| {name} | {100 * r['wer']:.1f}% | {r['rtf']:.3f} | {r['same_as_first']}/{len(utterances)} |")
    print(json.dumps({"bench": "whisper_context", "manifest": str(args.manifest), "rows": rows}))


if __name__ == "__main__":
    main()
