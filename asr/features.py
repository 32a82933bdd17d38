"""Acoustic features: log-mel filterbanks and global mean/variance normalisation (CMVN).

Both are ``nn.Module``s so that they run on the model's device and travel inside its checkpoint:
the model receives raw waveforms and computes its own features.

Frames are computed without centring (``center=False``): frame ``t`` covers samples
``[t * hop, t * hop + n_fft)``, so every frame inside an utterance's length sees only its own
samples. An utterance therefore gets the same features alone or zero-padded in a batch.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
import torchaudio
from typing import TYPE_CHECKING

from torch import nn

from asr.config import FeatureConfig

if TYPE_CHECKING:  # the statistics' readers and progress bar are imported where they are used
    from rich.console import Console

    from asr.data.manifest import Utterance

# Added to the mel power before the log. It bounds digital silence (zero padding, trimmed
# recordings) to log(1e-6) ~ -13.8 instead of -23 for a 1e-10 floor, so that exact zeros do not
# become outliers that dominate the CMVN variance; real speech energies are far above it.
LOG_OFFSET = 1e-6


def frame_lengths(lengths: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complete frames in waveforms of ``lengths`` samples: (S - n_fft) // hop + 1, at least 0."""
    return ((lengths - n_fft).div(hop, rounding_mode="floor") + 1).clamp(min=0)


class LogMel(nn.Module):
    """Waveforms -> log-mel filterbank features, padded frames set to 0."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.sample_rate = config.sample_rate
        self.n_fft = round(config.win_ms * config.sample_rate / 1000)  # 400 at 16 kHz, 25 ms
        self.hop = round(config.hop_ms * config.sample_rate / 1000)  # 160 at 16 kHz, 10 ms
        self.n_mels = config.n_mels
        # Its window and filterbank are buffers, so .to(device) moves them with the model.
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=self.n_fft,
            win_length=self.n_fft,
            hop_length=self.hop,
            n_mels=config.n_mels,
            center=False,
            power=2.0,
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Feature frames for waveforms of ``lengths`` samples, (B,) -> (B,)."""
        return frame_lengths(lengths, self.n_fft, self.hop)

    def forward(
        self, waves: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute features.

        Args:
            waves: (B, S) float waveforms, zero-padded after each utterance's length.
            lengths: (B,) long, valid samples per utterance.
        Returns:
            feats: (B, T, n_mels) float32 log-mel energies; frames t >= feat_lengths[b] are 0.
            feat_lengths: (B,) long, (lengths - n_fft) // hop + 1, clamped at 0.
        """
        # The STFT and the log need fp32 even when the model runs under bf16/fp16 autocast.
        with torch.autocast(device_type=waves.device.type, enabled=False):
            waves = waves.float()
            if waves.size(1) < self.n_fft:  # too short for one frame: still return (B, 1, F)
                waves = nn.functional.pad(waves, (0, self.n_fft - waves.size(1)))
            power = self.mel(waves)  # (B, n_mels, T)
            feats = torch.log(power + LOG_OFFSET).transpose(1, 2)  # (B, T, n_mels)
        feat_lengths = self.output_lengths(lengths)
        valid = torch.arange(feats.size(1), device=feats.device) < feat_lengths[:, None]  # (B, T)
        return feats.masked_fill(~valid[..., None], 0.0), feat_lengths


class GlobalCMVN(nn.Module):
    """Normalise every feature bin by the training set's mean and standard deviation.

    Starts as the identity (mean 0, std 1); the real statistics come from ``from_stats``/``load``
    or from a checkpoint's state_dict (``mean`` and ``std`` are buffers).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))  # (F,)
        self.register_buffer("std", torch.ones(dim))  # (F,)

    @classmethod
    def from_stats(cls, mean: torch.Tensor, var: torch.Tensor, floor: float = 1e-5) -> GlobalCMVN:
        """Build from per-bin mean and variance, (F,) each; ``floor`` keeps the std away from 0."""
        cmvn = cls(mean.numel())
        cmvn.mean.copy_(mean.float())
        cmvn.std.copy_(var.double().clamp(min=0).sqrt().clamp(min=floor).float())
        return cmvn

    @classmethod
    def load(cls, path: str | Path) -> GlobalCMVN:
        """Build from a JSON file written by ``save_cmvn``."""
        return cls.from_stats(*load_cmvn(path))

    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features, (B,) lengths -> (B, T, F) normalised; padded frames stay 0."""
        valid = torch.arange(feats.size(1), device=feats.device) < feat_lengths[:, None]  # (B, T)
        normalised = (feats - self.mean) / self.std
        return normalised.masked_fill(~valid[..., None], 0.0)


class _FeatureSums(torch.utils.data.Dataset):
    """One utterance -> (frame count, per-bin sum, per-bin sum of squares), in float64."""

    def __init__(self, utterances: list[Utterance], config: FeatureConfig):
        self.utterances = utterances
        self.config = config
        self.logmel = LogMel(config)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        from asr.audio import load_audio

        wave, _ = load_audio(self.utterances[index].audio, self.config.sample_rate)  # (S,)
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
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and variance of log-mel features over every frame of ``manifest_utterances``.

    ``max_utterances > 0`` uses a random subset of that size (seeded, so reruns agree). Sums are
    accumulated in float64: hundreds of millions of frames would lose precision in float32.

    Returns:
        mean: (n_mels,) float32.
        var: (n_mels,) float32, the population variance.
    """
    from asr.progress import counting_progress

    utterances = list(manifest_utterances)
    if max_utterances > 0 and len(utterances) > max_utterances:
        utterances = random.Random(0).sample(utterances, max_utterances)
    if not utterances:
        raise ValueError("no utterances to compute CMVN statistics from")
    loader = torch.utils.data.DataLoader(
        _FeatureSums(utterances, config),
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
        raise ValueError("every utterance is shorter than one feature frame")
    mean = total / count
    var = (squares / count - mean.square()).clamp(min=0)
    return mean.float(), var.float()


def save_cmvn(
    path: str | Path, mean: torch.Tensor, var: torch.Tensor, count: int | None = None
) -> None:
    """Write CMVN statistics as readable JSON: {"count": frames or null, "mean": [], "var": []}."""
    record = {"count": count, "mean": mean.tolist(), "var": var.tolist()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def load_cmvn(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read statistics written by ``save_cmvn`` -> (mean (F,), var (F,)) float32."""
    record = json.loads(Path(path).read_text())
    mean = torch.tensor(record["mean"], dtype=torch.float32)
    var = torch.tensor(record["var"], dtype=torch.float32)
    if mean.shape != var.shape:
        raise ValueError(f"{path}: mean has {mean.numel()} bins but var has {var.numel()}")
    return mean, var
