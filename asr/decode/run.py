"""Decode a manifest with a trained experiment and write hypotheses, scores, timing and WER.

    out_dir/
      hyp.txt        id<TAB>text, in manifest order (what ``asr wer`` reads)
      scores.jsonl   one object per utterance: id, text, tokens, score, attention, ctc
      timing.json    audio seconds, decode seconds, real-time factor, method and options
      wer.json, alignments.txt   (asr.metrics) when the manifest has reference text

Utterances are decoded in batches of similar duration (longest first: least padding, and an
out-of-memory error shows up at once); outputs are written in manifest order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import ProgressColumn, Task, TimeElapsedColumn
from rich.text import Text

from asr.audio import load_audio
from asr.data.dataset import pad
from asr.data.manifest import Utterance, read_manifest
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch
from asr.experiment import load_for_inference
from asr.lm.scorer import load_fusion_lm
from asr.metrics import Transcripts, print_report, score, write_report
from asr.progress import counting_progress
from asr.text.tokenizer import Tokenizer

HYP_NAME = "hyp.txt"
SCORES_NAME = "scores.jsonl"
TIMING_NAME = "timing.json"


@dataclass(frozen=True)
class DecodeSummary:
    utterances: int
    audio_seconds: float
    decode_seconds: float  # wall time of the decoding loop: audio loading, encoder and search
    rtf: float  # real-time factor: decode_seconds / audio_seconds
    wer: float | None  # None when the manifest has no reference text
    out_dir: Path


class _Waves(torch.utils.data.Dataset):
    """Manifest index -> (index, (S,) float32 waveform at the model's rate)."""

    def __init__(self, utterances: list[Utterance], sample_rate: int):
        self.utterances = utterances
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return index, load_audio(self.utterances[index].audio, self.sample_rate)[0]


def _collate(items: list[tuple[int, torch.Tensor]]) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    indices, waves = zip(*items)
    padded, lengths = pad(list(waves), 0.0)  # (B, S), (B,)
    return list(indices), padded, lengths


def duration_batches(utterances: list[Utterance], batch_size: int) -> list[list[int]]:
    """Manifest indices in batches of ``batch_size``, longest utterances first (ties by index)."""
    order = sorted(range(len(utterances)), key=lambda i: (-utterances[i].duration, i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class _UtterancesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} utt/s" if speed else "- utt/s", style="cyan")


def decode_manifest(
    exp_dir: str | Path,
    manifest: str | Path,
    out_dir: str | Path,
    options: DecodeOptions,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    console: Console | None = None,
    num_workers: int = 0,
    lm_dir: str | Path | None = None,
) -> DecodeSummary:
    """Decode every utterance of ``manifest`` with the model of ``exp_dir`` (see module docstring).

    ``checkpoint`` is a file in exp_dir/checkpoints or a path (default: averaged, else last);
    ``num_workers`` DataLoader processes read audio while the model decodes; ``lm_dir`` holds an
    `asr lm train` LM fused into beam search with weight ``options.lm_weight``.
    """
    console = console or Console()
    model, tokenizer, config = load_for_inference(exp_dir, checkpoint, device)
    lm = load_fusion_lm(lm_dir, exp_dir, device) if lm_dir is not None else None
    utterances = read_manifest(manifest)
    out_dir = Path(out_dir)  # created only once the inputs proved readable
    out_dir.mkdir(parents=True, exist_ok=True)
    loader = torch.utils.data.DataLoader(
        _Waves(utterances, config.features.sample_rate),
        batch_sampler=duration_batches(utterances, options.batch_size),
        collate_fn=_collate,
        num_workers=num_workers,
    )
    results: list[Hypothesis | None] = [None] * len(utterances)
    samples = 0
    progress = counting_progress(console, _UtterancesPerSecond(), TimeElapsedColumn())
    start = time.perf_counter()
    with progress:
        task = progress.add_task(f"decoding ({options.method})", total=len(utterances))
        for indices, waves, wave_lengths in loader:
            hyps = decode_batch(model, waves.to(device), wave_lengths.to(device), options, lm)
            for index, nbest in zip(indices, hyps):
                results[index] = nbest[0]
            samples += int(wave_lengths.sum())
            progress.advance(task, len(indices))
    decode_seconds = time.perf_counter() - start
    audio_seconds = samples / config.features.sample_rate

    texts = _write_hypotheses(utterances, results, tokenizer, out_dir)  # type: ignore[arg-type]
    rtf = decode_seconds / audio_seconds if audio_seconds > 0 else math.inf
    timing = {
        "utterances": len(utterances),
        "audio_seconds": audio_seconds,
        "decode_seconds": decode_seconds,
        "rtf": rtf,
        "utterances_per_second": len(utterances) / decode_seconds if decode_seconds > 0 else None,
        "method": options.method,
        "options": dataclasses.asdict(options),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "lm": str(lm_dir) if lm_dir is not None else None,
    }
    (out_dir / TIMING_NAME).write_text(json.dumps(timing, indent=2) + "\n")
    console.print(
        f"decoded {len(utterances)} utterances ({audio_seconds:.1f} s of audio) in "
        f"{decode_seconds:.1f} s: real-time factor {rtf:.3f}"
    )

    wer = None
    if any(utt.text for utt in utterances):
        report = score(Transcripts.from_utterances(utterances), Transcripts(texts))
        write_report(report, out_dir)
        print_report(report, console)
        wer = report.wer
    return DecodeSummary(len(utterances), audio_seconds, decode_seconds, rtf, wer, out_dir)


def _write_hypotheses(
    utterances: list[Utterance], results: list[Hypothesis], tokenizer: Tokenizer, out_dir: Path
) -> dict[str, str]:
    """Write hyp.txt and scores.jsonl in manifest order; return id -> text."""
    texts: dict[str, str] = {}
    with (out_dir / HYP_NAME).open("w") as hyp_file, (out_dir / SCORES_NAME).open("w") as score_file:
        for utt, hyp in zip(utterances, results):
            text = " ".join(tokenizer.decode(hyp.tokens).split())  # one line, single spaces
            texts[utt.id] = text
            hyp_file.write(f"{utt.id}\t{text}\n")
            record = {
                "id": utt.id,
                "text": text,
                "tokens": hyp.tokens,
                "score": _finite(hyp.score),
                "attention": _finite(hyp.attention),
                "ctc": _finite(hyp.ctc),
            }
            score_file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return texts


def _finite(value: float | None) -> float | None:
    """JSON has no infinities: an impossible score (-inf) is written as null."""
    return value if value is not None and math.isfinite(value) else None
