"""Whisper tiny.en speed and accuracy: `asr` against faster-whisper and openai-whisper, one table.

Usage: .venv/bin/python bench/whisper_speed.py [--threads 2] [--short 16] [--long 3] [--repeats 2]
           [--finetuned EXP] [--unseen SPEAKER] [--fsdd DIR] [--skip-openai] [--json FILE]

The same tiny.en weights (the bundled CTranslate2 copy, imported once by `asr import whisper` and
written back in openai-whisper's format for openai-whisper) decode the same real speech: FSDD
recordings of one speaker joined with 0.3 s pauses into utterances of 2-5 s ("short"), about 10 s
and about 29 s ("30s"). Each system decodes every set with greedy search and beam 5, one
utterance at a time and batched:

* asr: 30 s padding (zero feature frames, as faster-whisper), batches of 8 of different lengths;
  fp32, and "asr bf16" (the encoder under bf16 autocast, the search in fp32) where the CPU has
  native bf16 (AMX or AVX512-BF16), and "asr int8" (every linear layer int8, asr.nn.int8);
* faster-whisper (CTranslate2 fp32 and int8): ``WhisperModel.transcribe`` with temperature 0,
  no timestamps and no fallback, one utterance at a time; its ``BatchedInferencePipeline``
  (batch 8) on the set joined into one recording with 1 s pauses, as it is meant to be used;
* openai-whisper (if installed): ``transcribe`` with the same options;
* each runtime (CTranslate2; torch: asr and openai-whisper) in a process of its own, one after
  the other (see ``run_worker``);
* with ``--finetuned EXP``: that experiment (e.g. the digits recipe's model fine-tuned unpadded),
  decoded as its config says (unpadded), on the short set; with ``--unseen SPEAKER`` every
  system also decodes a short set of that speaker alone (the one the fine-tuned model never
  heard), so the fine-tuned model is also scored on speech of a speaker it was not trained on.

RTF is decode wall time / audio seconds (feature extraction included, model loading not), the
best of --repeats runs of the whole set (the first run of a system on a set also pays one-time
costs, such as oneDNN creating kernels for new shapes; every system gets the same repeats); WER is
over digit words after lower-casing, dropping punctuation and spelling digits out ("7" ->
"seven"), so that "Seven, two." and "72" both score against "SEVEN TWO". "same" counts the
transcripts identical, character for character, to faster-whisper fp32 batch 1's of the same audio
with the same search (greedy or beam 5). The table is printed, then one JSON line (also written to --json).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jiwer
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asr import cpu  # noqa: E402
from asr.audio import load_audio  # noqa: E402
from asr.data.dataset import pad  # noqa: E402
from asr.decode.options import DecodeOptions  # noqa: E402
from asr.decode.search import decode_batch  # noqa: E402
from asr.experiment import load_for_inference  # noqa: E402
from asr.precision import cpu_capability, cpu_model, has_native_bf16  # noqa: E402

WORDS = "zero one two three four five six seven eight nine".split()
RATE = 16000


# --------------------------------------------------------------------------- audio


def make_sets(
    fsdd: Path, short: int, long: int, seed: int = 0, unseen: str | None = None
) -> dict[str, list[tuple[torch.Tensor, str]]]:
    """FSDD recordings of one speaker joined into utterances of the sets' durations; with
    ``unseen``, also a short set of that speaker alone (named "short <speaker>")."""
    rng = random.Random(seed)
    files = sorted(fsdd.glob("*.wav"))
    by_speaker: dict[str, list[Path]] = {}
    for path in files:
        by_speaker.setdefault(path.stem.split("_")[1], []).append(path)
    speakers = sorted(by_speaker)
    gap = torch.zeros(int(0.3 * RATE))

    def utterance(seconds: float, speaker: str | None = None) -> tuple[torch.Tensor, str]:
        paths = by_speaker[speaker or rng.choice(speakers)]
        pieces, words, total = [], [], 0.0
        while True:
            path = rng.choice(paths)
            wave = load_audio(path, RATE)[0]
            if pieces and total + wave.numel() / RATE > seconds:
                break
            pieces += [wave, gap]
            words.append(WORDS[int(path.stem.split("_")[0])].upper())
            total += wave.numel() / RATE + 0.3
        return torch.cat(pieces[:-1]), " ".join(words)

    sets = {
        "short": [utterance(rng.uniform(2.0, 5.0)) for _ in range(short)],
        "10s": [utterance(10.0) for _ in range(max(2, long * 2))],
        "30s": [utterance(29.0) for _ in range(long)],
    }
    if unseen:
        if unseen not in by_speaker:
            raise SystemExit(f"--unseen {unseen}: no such FSDD speaker (there are {', '.join(speakers)})")
        sets[f"short {unseen}"] = [utterance(rng.uniform(2.0, 5.0), unseen) for _ in range(short)]
    return sets


def normalise(text: str) -> str:
    text = re.sub(r"\d", lambda m: f" {WORDS[int(m.group())]} ", text.lower())
    text = re.sub(r"[^a-z' ]+", " ", text).replace("oh", "zero")
    return " ".join(text.split())


def wer(refs: list[str], hyps: list[str]) -> float:
    refs = [normalise(r) for r in refs]
    return jiwer.wer(refs, [normalise(h) or "<empty>" for h in hyps])


# --------------------------------------------------------------------------- systems


_LOADED: dict[Path, tuple] = {}


def loaded(exp: Path) -> tuple:
    """The experiment's model and tokenizer, loaded once (loading is not timed)."""
    if exp not in _LOADED:
        _LOADED[exp] = load_for_inference(exp)[:2]
    return _LOADED[exp]


def run_asr(exp: Path, waves: list[torch.Tensor], beam: int, batch: int, precision: str = "fp32") -> list[str]:
    model, tokenizer = loaded(exp)
    cpu.keep_freed_memory()  # as `asr decode` and `asr transcribe` do
    method = "attention_greedy" if beam == 1 else "attention_beam"
    options = DecodeOptions(method=method, beam=beam, length_norm=beam > 1, batch_size=batch, precision=precision)
    order = sorted(range(len(waves)), key=lambda i: -waves[i].numel())  # similar lengths together
    texts = [""] * len(waves)
    for first in range(0, len(order), batch):
        rows = order[first : first + batch]
        padded, lengths = pad([waves[i] for i in rows])
        for row, nbest in zip(rows, decode_batch(model, padded, lengths, options)):
            texts[row] = tokenizer.decode(nbest[0].tokens)
    return texts


FW_OPTIONS = dict(temperature=0.0, without_timestamps=True, condition_on_previous_text=False,
                  vad_filter=False, language="en", no_speech_threshold=None)  # fmt: skip


def run_faster_whisper(model, waves: list[torch.Tensor], beam: int) -> list[str]:
    texts = []
    for wave in waves:
        segments, _ = model.transcribe(wave.numpy(), beam_size=beam, **FW_OPTIONS)
        texts.append(" ".join(s.text.strip() for s in segments))
    return texts


def run_fw_batched(model, waves: list[torch.Tensor], beam: int) -> list[str]:
    from faster_whisper import BatchedInferencePipeline

    gap = torch.zeros(RATE)
    joined = torch.cat([x for w in waves for x in (w, gap)]).numpy()
    pipeline = BatchedInferencePipeline(model=model)
    segments, _ = pipeline.transcribe(joined, batch_size=8, beam_size=beam, language="en",
                                      without_timestamps=True, temperature=0.0)  # fmt: skip
    return [" ".join(s.text.strip() for s in segments)]  # one transcript of the joined recording


def run_openai(model, waves: list[torch.Tensor], beam: int) -> list[str]:
    texts = []
    for wave in waves:
        result = model.transcribe(wave, temperature=0.0, beam_size=beam if beam > 1 else None, fp16=False,
                                  condition_on_previous_text=False, without_timestamps=True, language="en",
                                  no_speech_threshold=None)  # fmt: skip
        texts.append(result["text"].strip())
    return texts


def openai_checkpoint(exp: Path, path: Path) -> None:
    """The imported weights written back in openai-whisper's format (names, id order)."""
    import asr.whisper.weights as w
    from asr.whisper.dims import WhisperDims

    model, tok, config = load_for_inference(exp)
    m = config.model
    dims = WhisperDims(config.features.n_mels, m.encoder.max_positions, m.d_model, m.encoder.heads, m.encoder.layers,
                       model.vocab_size, m.decoder.max_positions, m.d_model, m.decoder.heads, m.decoder.layers)  # fmt: skip
    inverse = {w._rename(n): n for n in w.expected_shapes(dims)}
    state = {inverse[k]: v for k, v in model.state_dict().items() if k in inverse}
    name = "decoder.token_embedding.weight"
    state[name] = state[name][[tok.to_model(i) for i in range(tok.vocab_size)]]
    torch.save({"dims": dims.__dict__, "model_state_dict": state}, path)


# --------------------------------------------------------------------------- main


def timed(fn, waves: list[torch.Tensor], repeats: int) -> tuple[list[str], float]:
    """fn(waves)'s transcripts and its best wall time over ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        texts = fn(waves)
        best = min(best, time.perf_counter() - start)
    return texts, best


RUNTIMES = ("ctranslate2", "torch")  # one worker process each, in this order


def systems(args, exp: Path, tmp: Path, runtime: str) -> list[tuple[str, int, int, object]]:
    """(name, beam, batch, fn(waves) -> texts) for every installed system of ``runtime``."""
    out: list[tuple[str, int, int, object]] = []
    if runtime == "ctranslate2":
        from faster_whisper import WhisperModel

        from asr.whisper.sources import bundled_tiny_en

        for compute in ("float32", "int8"):  # fp32 first: the reference of the "same" column
            fw = WhisperModel(str(bundled_tiny_en()), device="cpu", compute_type=compute, cpu_threads=args.threads)
            name = "faster-whisper " + ("fp32" if compute == "float32" else "int8")
            for beam in (1, 5):
                out.append((name, beam, 1, lambda w, m=fw, b=beam: run_faster_whisper(m, w, b)))
            if compute == "float32":
                for beam in (1, 5):
                    out.append(("faster-whisper fp32 pipeline", beam, 8, lambda w, m=fw, b=beam: run_fw_batched(m, w, b)))
        return out
    loaded(exp)
    if args.finetuned:
        loaded(args.finetuned)
    precisions = ["fp32"] + (["bf16"] if has_native_bf16() else []) + ["int8"]  # int8: asr.nn.int8
    if "bf16" not in precisions:
        print("this CPU has no native bf16 (AMX or AVX512-BF16): asr bf16 left out", file=sys.stderr)
    for precision in precisions:
        name = "asr" if precision == "fp32" else f"asr {precision}"
        for beam in (1, 5):
            for batch in (1, 8):
                out.append((name, beam, batch, lambda w, b=beam, n=batch, p=precision: run_asr(exp, w, b, n, p)))
    if not args.skip_openai:
        try:
            import whisper
        except ImportError:
            print("openai-whisper is not installed: left out", file=sys.stderr)
        else:
            openai_checkpoint(exp, tmp / "tiny.en.pt")
            model = whisper.load_model(tmp / "tiny.en.pt", device="cpu")
            for beam in (1, 5):
                out.append(("openai-whisper", beam, 1, lambda w, m=model, b=beam: run_openai(m, w, b)))
    if args.finetuned:
        for precision in precisions:
            name = f"asr fine-tuned ({Path(args.finetuned).name})" + ("" if precision == "fp32" else f" {precision}")
            for beam in (1, 5):
                for batch in (1, 8):
                    out.append((name, beam, batch,
                                lambda w, b=beam, n=batch, p=precision: run_asr(Path(args.finetuned), w, b, n, p)))  # fmt: skip
    return out


def measure(args, exp: Path, tmp: Path, runtime: str) -> list[dict]:
    """Every system of ``runtime`` on every set: one row each, with its transcripts."""
    sets = make_sets(args.fsdd, args.short, args.long, unseen=args.unseen)
    rows = []
    for name, beam, batch, fn in systems(args, exp, tmp, runtime):
        for set_name, items in sets.items():
            if name.startswith("asr fine-tuned") and not set_name.startswith("short"):
                continue
            waves, refs = [w for w, _ in items], [r for _, r in items]
            texts, seconds = timed(fn, waves, max(1, args.repeats))
            audio = sum(w.numel() for w in waves) / RATE
            joined = len(texts) == 1 and len(waves) > 1
            score = wer([" ".join(refs)], texts) if joined else wer(refs, texts)
            rows.append({"system": name, "set": set_name, "search": "greedy" if beam == 1 else f"beam {beam}",
                         "batch": batch, "utterances": len(waves), "audio_s": round(audio, 1),
                         "rtf": seconds / audio, "utt_per_s": len(waves) / seconds, "wer": score,
                         "joined": joined, "texts": texts})  # fmt: skip
            print(f"{name:32s} {set_name:5s} beam {beam} batch {batch}: RTF {seconds / audio:.3f} "
                  f"WER {100 * score:.1f}%", file=sys.stderr, flush=True)
    return rows


def run_worker(args, exp: Path, tmp: Path, runtime: str) -> list[dict]:
    """``measure`` in a fresh process of this script. CTranslate2 and torch must not share one:
    CTranslate2's calls bind to torch's libgomp (``LD_DEBUG=bindings`` shows libctranslate2's
    ``GOMP_parallel`` bound to torch/lib/libgomp.so.1), and once both have a team of threads there are
    more OpenMP threads than cores, so libgomp stops spinning between parallel regions; a torch
    decode after a faster-whisper one ran 1.6x slower in the same process (tiny.en, 30 s clips)."""
    command = [sys.executable, __file__, *sys.argv[1:], "--worker", runtime, "--exp", str(exp), "--tmp", str(tmp)]
    result = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def with_same(rows: list[dict]) -> list[dict]:
    """Each row with ``same_as_fw_fp32``: its transcripts identical to faster-whisper fp32
    greedy (beam 5: beam 5) batch 1's of the same set; None where there is no such reference."""
    reference = {(r["set"], r["search"]): r["texts"] for r in rows if r["system"] == "faster-whisper fp32"}
    out = []
    for r in rows:
        texts = reference.get((r["set"], r["search"]))
        same = None if texts is None or r["joined"] else sum(a == b for a, b in zip(r["texts"], texts))
        out.append({k: v for k, v in r.items() if k not in ("texts", "joined")} | {"same_as_fw_fp32": same})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--short", type=int, default=16, help="utterances of 2-5 s")
    parser.add_argument("--long", type=int, default=2, help="utterances of ~29 s (and twice as many of ~10 s)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each system on each set; the best is kept")
    parser.add_argument("--fsdd", type=Path, default=REPO.parent / "shared" / "data" / "fsdd" / "recordings")
    parser.add_argument("--finetuned", type=Path, default=None, help="a fine-tuned experiment to add (short set)")
    parser.add_argument("--unseen", default=None, help="also a short set of this FSDD speaker alone (the one the "
                        "fine-tuned model never heard, e.g. george)")
    parser.add_argument("--skip-openai", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", choices=RUNTIMES, help=argparse.SUPPRESS)  # internal: one runtime's systems
    parser.add_argument("--exp", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(measure(args, args.exp, args.tmp, args.worker)))
        return

    from asr.whisper.convert import import_whisper

    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "tiny.en"
        import_whisper("tiny.en", exp)
        rows = with_same([row for runtime in RUNTIMES for row in run_worker(args, exp, Path(tmp), runtime)])
    print_table(rows, args)
    record = {"bench": "whisper_speed", "date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(),
              "capability": cpu_capability(), "threads": args.threads, "repeats": args.repeats, "rows": rows}  # fmt: skip
    line = json.dumps(record)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


def print_table(rows: list[dict], args) -> None:
    print(f"CPU: {cpu_model()}; torch CPU capability: {cpu_capability()}; "
          f"{args.threads} threads; best of {args.repeats} runs; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print("| system | set | search | batch | RTF | utt/s | WER | same as fw fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        same = "-" if r["same_as_fw_fp32"] is None else f"{r['same_as_fw_fp32']}/{r['utterances']}"
        print(f"| {r['system']} | {r['set']} | {r['search']} | {r['batch']} | {r['rtf']:.3f} | "
              f"{r['utt_per_s']:.2f} | {100 * r['wer']:.1f}% | {same} |")


if __name__ == "__main__":
    main()
