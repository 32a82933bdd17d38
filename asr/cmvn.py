"""Global CMVN statistics of a training set: per-bin mean and variance of its log-mel features,
computed once by `asr train` (in DataLoader workers, with a progress bar) and kept in the
experiment as ``cmvn.json``. The model applies them with ``asr.features.GlobalCMVN``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console

from asr import files
from asr.audio import load_audio
from asr.config import FeatureConfig
from asr.data.manifest import Utterance
from asr.features import LogMel
from asr.progress import counting_progress


AudioSource = Callable[[Utterance], torch.Tensor]  # utterance -> (S,) float32 waveform


class CMVNError(ValueError):
    """Statistics that cannot be computed or read (no usable audio, a damaged cmvn.json)."""


class _FeatureSums(torch.utils.data.Dataset):
    """One utterance -> (frame count, per-bin sum, per-bin sum of squares), in float64."""

    def __init__(self, utterances: list[Utterance], config: FeatureConfig, audio: AudioSource | None = None):
        self.utterances = utterances
        self.config = config
        self.logmel = LogMel(config)
        self.audio = audio

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        utt = self.utterances[index]
        wave = self.audio(utt) if self.audio else load_audio(utt.audio, self.config.sample_rate)[0]  # (S,)
        with torch.no_grad():
            feats, lengths = self.logmel(wave[None], torch.tensor([wave.numel()]))
        frames = feats[0, : lengths[0]].double()  # (T, F)
        return frames.size(0), frames.sum(0), frames.square().sum(0)


def _sum_items(
    items: list[tuple[int, torch.Tensor, torch.Tensor]],
) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """Add up a batch in the worker: -> (utterances, frames, sum (F,), sum of squares (F,))."""
    counts, sums, squares = zip(*items)
    return len(items), sum(counts), torch.stack(sums).sum(0), torch.stack(squares).sum(0)


def compute_cmvn_stats(
    manifest_utterances: list[Utterance],
    config: FeatureConfig,
    max_utterances: int = 0,
    num_workers: int = 2,
    console: Console | None = None,
    audio: AudioSource | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and variance of log-mel features over every frame of ``manifest_utterances``.

    ``audio`` reads an utterance's waveform at the features' rate where its ``audio`` field is
    not the file to read (tar shards: asr.data.shards). ``max_utterances > 0`` uses a random subset of that size (seeded, so reruns agree). Sums are
    accumulated in float64: hundreds of millions of frames would lose precision in float32.

    Returns:
        mean: (n_mels,) float32.
        var: (n_mels,) float32, the population variance.
    """
    utterances = list(manifest_utterances)
    if max_utterances > 0 and len(utterances) > max_utterances:
        utterances = random.Random(0).sample(utterances, max_utterances)
    if not utterances:
        raise CMVNError("no utterances to compute CMVN statistics from")
    loader = torch.utils.data.DataLoader(
        _FeatureSums(utterances, config, audio),
        batch_size=8,
        num_workers=num_workers,
        collate_fn=_sum_items,
    )
    count = 0
    total = torch.zeros(config.n_mels, dtype=torch.float64)
    squares = torch.zeros(config.n_mels, dtype=torch.float64)
    progress = counting_progress(console, transient=True)
    with progress:
        task = progress.add_task("CMVN statistics", total=len(utterances))
        for done, frames, frame_sum, frame_squares in loader:
            count += frames
            total += frame_sum
            squares += frame_squares
            progress.advance(task, done)
    if count == 0:
        raise CMVNError("every utterance is shorter than one feature frame")
    mean = total / count
    var = (squares / count - mean.square()).clamp(min=0)
    if not (mean.isfinite().all() and var.isfinite().all()):
        raise CMVNError("CMVN statistics are not finite: some training audio holds NaN or Inf samples")
    return mean.float(), var.float()


def save_cmvn(path: str | Path, mean: torch.Tensor, var: torch.Tensor) -> None:
    """Write CMVN statistics as readable JSON: {"mean": [...], "var": [...]} (atomically)."""
    files.write_json(path, {"mean": mean.tolist(), "var": var.tolist()}, indent=1)


def load_cmvn(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read statistics written by ``save_cmvn`` -> (mean (F,), var (F,)) float32."""
    try:
        record = json.loads(Path(path).read_text())
        mean = torch.tensor(record["mean"], dtype=torch.float32)
        var = torch.tensor(record["var"], dtype=torch.float32)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise CMVNError(f"{path}: not CMVN statistics ({type(err).__name__}: {err}); delete it to recompute") from None
    if mean.shape != var.shape or mean.ndim != 1:
        raise CMVNError(f"{path}: mean has {mean.numel()} bins but var has {var.numel()}; delete it to recompute")
    if not (mean.isfinite().all() and var.isfinite().all()):
        raise CMVNError(f"{path}: statistics are not finite (NaN or Inf audio in an earlier run); delete it to recompute")
    return mean, var
