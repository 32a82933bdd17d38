"""Robustness to noise: WER and RTF over test conditions x systems, one table (and JSON).

Usage: .venv/bin/python bench/robustness.py --work DIR [--conditions clean,white10,...]
           [--systems zero-shot,fine-tuned,fine-tuned-noise,faster-whisper] [--exp-clean EXP]
           [--exp-noise EXP] [--method M] [--beam N] [--limit N] [--threads 2] [--reuse]
           [--json FILE]

--work is recipes/digits/run_whisper.sh's work folder: its manifests/test.jsonl is "clean" and
manifests/test-<condition>.jsonl the noisy copies of stage 7 (white and babble at 10 and 0 dB).
Systems:
    zero-shot         the imported tiny.en (<work>/whisper), 30 s padding, `asr decode` defaults
    fine-tuned        fine-tuned without noise augmentation (<work>/exp, stage 5; --exp-clean)
    fine-tuned-noise  fine-tuned with it (<work>/exp-noise, stage 8; --exp-noise)
    faster-whisper    ``WhisperModel.transcribe`` with its defaults (beam 5, best of 5 at T > 0,
                      temperature fallback, no-speech threshold), language "en", on the same
                      tiny.en weights (the bundled CTranslate2 copy), fp32
The asr systems run `asr decode` (a process each, with --method/--beam if given, else its
defaults) and the table reads its wer.json and timing.json; faster-whisper runs in a process of
its own too (CTranslate2 and torch must not share one, see bench/whisper_speed.py). Every system
is scored the same way: asr.metrics with the digits normaliser (one word per digit). RTF is
decode wall time over audio seconds, audio loading included, model loading not. Each cell also
gives its longest hypothesis in tokens (a loop runs to the length limit: for Whisper, its 448
decoder positions less the prompt). A system whose
model is missing is skipped with a line saying so. Outputs go under <work>/robustness/; with
--reuse a (system, condition) already measured there is read back instead of decoded again (to
fill a table piece by piece on a busy machine). The table is printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from machine import describe  # noqa: E402  (bench/machine.py)

CONDITIONS = ("clean", "white10", "white0", "babble10", "babble0")
SYSTEMS = ("zero-shot", "fine-tuned", "fine-tuned-noise", "faster-whisper")
NAMES = {
    "zero-shot": "asr tiny.en zero-shot",
    "fine-tuned": "asr fine-tuned",
    "fine-tuned-noise": "asr fine-tuned + noise aug.",
    "faster-whisper": "faster-whisper transcribe",
}


def manifest_of(work: Path, condition: str) -> Path:
    return work / "manifests" / ("test.jsonl" if condition == "clean" else f"test-{condition}.jsonl")


def limited(manifest: Path, limit: int, out: Path) -> Path:
    """The first ``limit`` utterances of ``manifest`` (all when 0), as a manifest file."""
    if not limit:
        return manifest
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(manifest.read_text().splitlines(keepends=True)[:limit]))
    return out


def experiment(args, system: str) -> Path | None:
    """The experiment folder of an asr system, or None (with the reason printed) when missing."""
    exp = {"zero-shot": args.work / "whisper", "fine-tuned": args.exp_clean or args.work / "exp",
           "fine-tuned-noise": args.exp_noise or args.work / "exp-noise"}[system]  # fmt: skip
    checkpoints = exp / "checkpoints"
    if not (exp / "config.yaml").is_file() or not checkpoints.is_dir() or not any(checkpoints.glob("*.pt")):
        print(f"skipped {NAMES[system]}: no trained model in {exp}", file=sys.stderr)
        return None
    return exp


def run_asr(args, exp: Path, manifest: Path, out: Path) -> None:
    """`asr decode` of ``manifest`` into ``out`` (its wer.json and timing.json)."""
    command = [str(Path(sys.executable).parent / "asr"), "decode", "--exp", str(exp), "--manifest", str(manifest),
               "--out", str(out), "--normalizer", "digits", "--device", "cpu"]  # fmt: skip
    if args.method:
        command += ["--method", args.method]
    if args.beam:
        command += ["--beam", str(args.beam)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)


def run_faster_whisper(args, manifest: Path, out: Path) -> None:
    """faster-whisper's default transcribe of ``manifest`` into ``out``, in a worker process."""
    command = [sys.executable, __file__, "--worker", str(manifest), "--out-dir", str(out), "--threads", str(args.threads)]
    subprocess.run(command, check=True)


def faster_whisper_worker(manifest: Path, out: Path, threads: int) -> None:
    """Transcribe every utterance with faster-whisper's defaults; write hyp.txt and result.json."""
    import torch
    from faster_whisper import WhisperModel

    from asr.audio import load_audio
    from asr.data.manifest import read_manifest
    from asr.metrics import Transcripts, score
    from asr.whisper.sources import bundled_tiny_en

    torch.set_num_threads(1)  # only audio loading uses torch here
    model = WhisperModel(str(bundled_tiny_en()), device="cpu", compute_type="float32", cpu_threads=threads)
    utterances = read_manifest(manifest)
    texts, samples, longest = {}, 0, 0
    start = time.perf_counter()
    for utt in utterances:
        wave = load_audio(utt.audio, 16000)[0]
        samples += wave.numel()
        segments = list(model.transcribe(wave.numpy(), language="en")[0])
        texts[utt.id] = " ".join(s.text.strip() for s in segments)
        longest = max(longest, sum(len(s.tokens) for s in segments))
    seconds = time.perf_counter() - start
    report = score(Transcripts.from_utterances(utterances), Transcripts(texts), normalizer="digits")
    out.mkdir(parents=True, exist_ok=True)
    (out / "hyp.txt").write_text("".join(f"{utt.id}\t{texts[utt.id]}\n" for utt in utterances))
    result = {"wer": report.wer, "rtf": seconds / (samples / 16000), "audio_s": samples / 16000,
              "search": "transcribe defaults (beam 5, fallback)", "max_tokens": longest}  # fmt: skip
    (out / "result.json").write_text(json.dumps(result))


def measure(args, system: str, condition: str) -> dict | None:
    """One cell: WER and RTF of ``system`` on ``condition`` (None when it cannot be measured)."""
    manifest = manifest_of(args.work, condition)
    if not manifest.is_file():
        print(f"skipped {condition}: no {manifest} (run_whisper.sh stage 7 makes it)", file=sys.stderr)
        return None
    cell = f"{condition}-first{args.limit}" if args.limit else condition  # a subset is a cell of its own
    out = args.work / "robustness" / system / cell
    result_file = out / ("result.json" if system == "faster-whisper" else "wer.json")
    manifest = limited(manifest, args.limit, args.work / "robustness" / "manifests" / f"{cell}.jsonl")
    if not (args.reuse and result_file.is_file()):
        if system == "faster-whisper":
            run_faster_whisper(args, manifest, out)
        else:
            exp = experiment(args, system)
            if exp is None:
                return None
            run_asr(args, exp, manifest, out)
    if system == "faster-whisper":
        row = json.loads(result_file.read_text())
    else:
        timing = json.loads((out / "timing.json").read_text())
        row = {"wer": json.loads(result_file.read_text())["wer"], "rtf": timing["rtf"], "audio_s": timing["audio_seconds"],
               "search": f"{timing['method']} (beam {timing['options']['beam']})",
               "max_tokens": max((len(json.loads(line)["tokens"]) for line in (out / "scores.jsonl").read_text().splitlines()), default=0)}  # fmt: skip
    print(f"{NAMES[system]:30s} {condition:9s} WER {100 * row['wer']:6.2f}%  RTF {row['rtf']:.3f}  longest {row.get('max_tokens')} tokens",
          file=sys.stderr, flush=True)  # fmt: skip
    return {"system": NAMES[system], "condition": condition, **row}


def available(system: str, args) -> bool:
    if system == "faster-whisper":
        try:
            import faster_whisper  # noqa: F401
        except ImportError:
            print("skipped faster-whisper transcribe: faster-whisper is not installed", file=sys.stderr)
            return False
        return True
    return experiment(args, system) is not None


def print_table(rows: list[dict], args, conditions: list[str]) -> None:
    machine = describe(torch.device("cpu"))
    print(f"CPU: {machine['cpu']}; torch CPU capability: {machine['cpu_capability']}; {args.threads} threads; "
          f"{time.strftime('%Y-%m-%d %H:%M')}; WER (RTF, longest hypothesis in tokens) per condition")  # fmt: skip
    print("| system | search | " + " | ".join(conditions) + " |")
    print("|---|---|" + "---|" * len(conditions))
    for system in dict.fromkeys(r["system"] for r in rows):
        cells = {r["condition"]: r for r in rows if r["system"] == system}
        search = next(iter(cells.values()))["search"]
        shown = [f"{100 * cells[c]['wer']:.1f}% ({cells[c]['rtf']:.3f}, {cells[c].get('max_tokens', '?')})" if c in cells else "-"
                 for c in conditions]  # fmt: skip
        print(f"| {system} | {search} | " + " | ".join(shown) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "recipes" / "digits" / "work" / "whisper-test-george")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--exp-clean", type=Path, default=None, help="fine-tuned without noise (default <work>/exp)")
    parser.add_argument("--exp-noise", type=Path, default=None, help="fine-tuned with noise (default <work>/exp-noise)")
    parser.add_argument("--method", default=None, help="asr decode --method (default: its own default)")
    parser.add_argument("--beam", type=int, default=0, help="asr decode --beam (default: its own default)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N utterances of each condition")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="read back cells already measured under <work>/robustness")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: faster-whisper on a manifest
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        faster_whisper_worker(args.worker, args.out_dir, args.threads)
        return
    conditions = [c for c in args.conditions.split(",") if c]
    systems = [s for s in args.systems.split(",") if s]
    for name in (*conditions, *systems):
        if name not in (*CONDITIONS, *SYSTEMS):
            raise SystemExit(f"unknown condition or system {name!r} (conditions: {', '.join(CONDITIONS)}; "
                             f"systems: {', '.join(SYSTEMS)})")  # fmt: skip
    rows = [row for s in systems if available(s, args) for c in conditions if (row := measure(args, s, c))]
    print_table(rows, args, conditions)
    record = {"bench": "robustness", "date": time.strftime("%Y-%m-%d %H:%M"), **describe(torch.device("cpu")),
              "threads": args.threads, "limit": args.limit, "rows": rows}  # fmt: skip
    line = json.dumps(record)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
