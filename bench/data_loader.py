"""Data-loader throughput: audio seconds per second per DataLoader worker, files vs tar shards.

Times the very loaders `asr train` uses (asr.train.data: ``TrainData`` over a manifest's files,
``ShardTrainData`` over `asr prepare shards` output) on a generated corpus of LibriSpeech-like
FLAC files (16 kHz noise, 2-20 s), with a config's data and augmentation settings (speed
perturbation included: it resamples in the workers). Each loader runs a whole epoch once to warm
the page cache and once timed, so "files" here is the best case of local files in memory; on a
network file system or a cold disk, where opening 280,000 files is what hurts, the gap to shards
is larger than measured here.

It then prints what one GPU would need: the audio seconds per second that the 100h recipe's
training consumes, from ESPnet's measured 11.9 h on one V100 for 210 passes of train-clean-100
(the figure in configs/transformer_100h.yaml; our own GPU step is not measured yet: give it with
``--gpu-step-seconds`` once bench/gpu_check.sh has run), and the workers per GPU that takes.

Usage: .venv/bin/python bench/data_loader.py [--config configs/transformer_100h.yaml]
       [--utterances 200] [--workers 1,2] [--shard-seconds 600] [--gpu-step-seconds S] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from asr.config import load_config  # noqa: E402
from asr.data.manifest import Utterance, manifest_texts, write_manifest  # noqa: E402
from asr.data.shards import write_shards  # noqa: E402
from asr.text.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from asr.train.data import ShardTrainData, TrainData  # noqa: E402
from asr.train.distributed import DistContext  # noqa: E402
from asr.train.state import Position  # noqa: E402

WORDS = "THE OF AND TO A IN THAT HE WAS IT HIS WITH AS FOR HAD YOU NOT BE HER ON AT BY WHICH".split()
# ESPnet, configs/transformer_100h.yaml: 210 passes of train-clean-100 (100.6 h) in 11.9 h on a V100.
V100_AUDIO_PER_SECOND = 210 * 100.6 * 3600 / (11.9 * 3600)


def make_corpus(root: Path, utterances: int, seed: int = 0) -> Path:
    """FLAC files of noise with LibriSpeech-like lengths, their manifest and a tokenizer."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    records = []
    for n in range(utterances):
        seconds = rng.uniform(2.0, 20.0)
        path = root / "audio" / f"{n:05d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.1 * noise.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        text = " ".join(rng.choice(WORDS) for _ in range(int(seconds * 2.5)))
        records.append(Utterance(f"u{n:05d}", str(path), sf.info(path).duration, 16000, str(n % 20), "1", text))
    write_manifest(records, root / "train.jsonl")
    train_tokenizer(manifest_texts([root / "train.jsonl"]), root / "tokenizer", vocab_size=60)
    return root / "train.jsonl"


def epoch(data: TrainData | ShardTrainData) -> tuple[float, int]:
    """One epoch through the loader: (audio seconds, utterances)."""
    seconds, count = 0.0, 0
    for batch in data.batches(Position()):
        seconds += float(batch.wave_lengths.sum()) / 16000
        count += len(batch)
    return seconds, count


def measure(kind: str, workers: int, args: argparse.Namespace, root: Path) -> dict:
    source = [f"data.train_shards={root / 'shards'}"] if kind == "shards" else [f"data.train_manifest={root / 'train.jsonl'}"]
    config = load_config(args.config, [*source, f"data.num_workers={workers}", f"data.tokenizer={root / 'tokenizer'}"])
    ctx = DistContext(0, 1, 0, torch.device("cpu"))
    cls = ShardTrainData if kind == "shards" else TrainData
    data = cls(config, load_tokenizer(root / "tokenizer"), ctx, Console(quiet=True))
    epoch(data)  # warm-up: page cache, worker start-up paths
    start = time.perf_counter()
    seconds, count = epoch(data)
    wall = time.perf_counter() - start
    return {"source": kind, "workers": workers, "utterances": count, "audio_s": seconds, "wall_s": wall,
            "audio_s_per_s": seconds / wall, "per_worker": seconds / wall / max(1, workers)}  # fmt: skip


def gpu_needs(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    config = load_config(args.config)
    needs = [("ESPnet's V100, measured (11.9 h for 210 x 100 h)", V100_AUDIO_PER_SECOND)]
    if args.gpu_step_seconds:
        needs.append((f"a GPU micro-batch of {config.data.max_batch_seconds:.0f} s in {args.gpu_step_seconds} s",
                      config.data.max_batch_seconds / args.gpu_step_seconds))  # fmt: skip
    best = {kind: max(r["per_worker"] for r in rows if r["source"] == kind) for kind in ("files", "shards")}
    return [{"gpu": name, "audio_s_per_s": rate, **{f"{k}_workers": math.ceil(rate / v) for k, v in best.items()}}
            for name, rate in needs]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/transformer_100h.yaml")
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--shard-seconds", type=float, default=600.0)
    parser.add_argument("--gpu-step-seconds", type=float, default=0.0, help="measured GPU time of one micro-batch")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asr-loader-") as tmp:
        root = Path(tmp)
        write_shards(make_corpus(root, args.utterances), root / "shards", shard_seconds=args.shard_seconds)
        rows = [measure(kind, int(w), args, root) for w in args.workers.split(",") for kind in ("files", "shards")]
    needs = gpu_needs(rows, args)
    table = Table(title=f"data loader, {load_config(args.config).augment.speed_perturb and 'with' or 'without'} speed perturbation")
    for column in ("source", "workers", "utterances", "audio s", "wall s", "audio s/s", "per worker"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["source"], str(r["workers"]), str(r["utterances"]), f"{r['audio_s']:.0f}", f"{r['wall_s']:.2f}",
                      f"{r['audio_s_per_s']:.0f}", f"{r['per_worker']:.0f}")  # fmt: skip
    console = Console()
    console.print(table)
    for need in needs:
        console.print(f"{need['gpu']}: {need['audio_s_per_s']:.0f} audio s/s = {need['files_workers']} workers "
                      f"reading files, {need['shards_workers']} reading shards (at this machine's rate)")  # fmt: skip
    record = {"machine": describe(torch.device("cpu")), "config": args.config, "rows": rows, "gpu_needs": needs}
    print(json.dumps(record))
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
