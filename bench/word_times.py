"""Word times of Whisper tiny.en against synthesised silence boundaries: `asr` (cross-attention)
and faster-whisper (``word_timestamps=True``), same weights, same audio, one table.

Usage: .venv/bin/python bench/word_times.py [--sets 16] [--threads 2] [--json FILE]

Each set is three sentences of the synthetic grammar (asr.data.synthetic), spoken alone by
espeak-ng in one of five voices, trimmed to their first and last non-silent sample and joined
with 0.3-0.6 s of silence, 0.3 s before and after (tests/support/spoken_words.py): the start of
each phrase's first word and the end of its last are known to the sample. A boundary counts
where the system recognised that word (words matched in order, lower-case, no punctuation);
"matched" says how many did. Errors are |time - true time| over those boundaries. "in phrase"
is the share of all recognised words whose middle lies inside their own phrase (a word timed
into the wrong phrase is an alignment error that the edges alone may not show).

Systems, each as a user runs it with its defaults:

* asr: `asr import whisper tiny.en`, then ``Recognizer.transcribe`` (attention beam 10, VAD
  segments); word times from cross-attention (asr.decode.attention_align), then fitted to the
  speech/silence edges of the frame energy (``fit_to_speech`` in asr.decode.word_times: cut at
  pauses inside a word, snapped to the edges, as CTC times are);
* asr raw DTW: the same decoding's words before that last step: what cross-attention alone
  gives (the last line compares these times with faster-whisper's, word by word);
* faster-whisper: ``WhisperModel(...).transcribe(audio, word_timestamps=True)`` (CTranslate2
  fp32, beam 5, its temperature fallback, no VAD filter).

"seconds" is the wall time of all sets (decoding and alignment; model loading not counted).
The table is printed, then one JSON line (also written to --json) with the machine
(bench/machine.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import describe  # noqa: E402  (bench/machine.py, beside this script)
from tests.support.spoken_words import boundary_errors, phrase_sets, transcribed_words, words_in_their_phrase  # noqa: E402

ASR_SYSTEMS = ("asr cross-attention", "asr cross-attention, raw DTW")
FASTER_WHISPER = "faster-whisper word_timestamps"


def asr_words(exp: Path):
    """Words of each set: as transcribed (fitted to the speech edges), and as cross-attention gave them."""
    import asr

    recognizer = asr.load(exp)
    return lambda audio: dict(zip(ASR_SYSTEMS, transcribed_words(recognizer, audio)))


def faster_whisper_words(model_dir: Path, threads: int):
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=threads)

    def run(audio: np.ndarray) -> dict[str, list[tuple[str, float, float]]]:
        segments, _ = model.transcribe(audio, word_timestamps=True)
        return {FASTER_WHISPER: [(w.word.strip(), w.start, w.end) for s in segments for w in s.words]}

    return run


def measure(run, sets) -> tuple[list[dict], dict[str, list]]:
    """Run one system (or one decoding that gives several rows) over every set -> a scored row
    for each, and each one's words per set."""
    run(sets[0][1])  # warm-up: one-time costs (kernel creation) are not the aligner's
    start = time.perf_counter()
    outputs = [run(audio) for _, audio, _ in sets]
    seconds = time.perf_counter() - start
    words = {name: [out[name] for out in outputs] for name in outputs[0]}
    return [score(name, sets, words[name], seconds) for name in words], words


def agreement(ours: list[list[tuple]], theirs: list[list[tuple]]) -> dict:
    """Where both systems recognised the same word (matched in order by text): how far apart
    they put its start and end (every word, not only the phrase edges)."""
    from tests.support.spoken_words import matched_words

    gaps = []
    for a, b in zip(ours, theirs):
        for i, j in matched_words([" ".join(w[0] for w in a)], b).items():
            gaps += [abs(a[i][1] - b[j][1]), abs(a[i][2] - b[j][2])]
    g = np.array(gaps) if gaps else np.array([np.nan])
    return {"boundaries": len(gaps), "median_ms": 1000 * float(np.median(g)), "within_20ms": float((g <= 0.02).mean())}


def score(name: str, sets, words: list[list[tuple[str, float, float]]], seconds: float) -> dict:
    errors, boundaries, inside, recognised = [], 0, 0, 0
    for (phrases, _, bounds), found_words in zip(sets, words):
        found, total = boundary_errors(phrases, bounds, found_words)
        errors, boundaries = errors + found, boundaries + total
        hits, count = words_in_their_phrase(phrases, bounds, found_words)
        inside, recognised = inside + hits, recognised + count
    e = np.array(errors) if errors else np.array([np.nan])
    return {
        "system": name, "matched": len(errors), "boundaries": boundaries,
        "median_ms": 1000 * float(np.median(e)), "mean_ms": 1000 * float(np.mean(e)),
        "p90_ms": 1000 * float(np.percentile(e, 90)), "within_50ms": float((e <= 0.05).mean()),
        "within_150ms": float((e <= 0.15).mean()), "in_phrase": inside / max(1, recognised), "seconds": seconds,
    }  # fmt: skip


def print_table(rows: list[dict], machine: dict) -> None:
    print(f"# {machine['cpu']} ({machine['cpu_capability']}), {machine['threads']} threads, torch {machine['torch']}")
    header = f"{'system':<34} {'matched':>9} {'median ms':>9} {'mean ms':>8} {'p90 ms':>7} {'<=50ms':>7} {'<=150ms':>8} {'in phrase':>9} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['system']:<34} {r['matched']:>4}/{r['boundaries']:<4} {r['median_ms']:>9.1f} {r['mean_ms']:>8.1f} "
            f"{r['p90_ms']:>7.1f} {r['within_50ms']:>7.1%} {r['within_150ms']:>8.1%} {r['in_phrase']:>9.1%} {r['seconds']:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=16, help="sets of three phrases (six boundaries each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the JSON line here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from asr.whisper.convert import import_whisper
    from asr.whisper.sources import bundled_tiny_en

    sets = phrase_sets(args.sets)
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "tiny.en"
        import_whisper(bundled_tiny_en(), exp)
        asr_rows, asr_out = measure(asr_words(exp), sets)
        fw_rows, fw_out = measure(faster_whisper_words(bundled_tiny_en(), args.threads), sets)
    rows = asr_rows + fw_rows
    same = agreement(asr_out[ASR_SYSTEMS[1]], fw_out[FASTER_WHISPER])
    machine = describe(torch.device("cpu"))
    print_table(rows, machine)
    print(
        f"asr raw DTW vs faster-whisper, every word both recognised: {same['boundaries']} boundaries, "
        f"median {same['median_ms']:.1f} ms apart, {same['within_20ms']:.1%} within 20 ms"
    )
    line = json.dumps({"benchmark": "word_times", "sets": args.sets, "machine": machine, "rows": rows, "raw_vs_faster_whisper": same})
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
