"""Acoustic features: log-mel filterbanks and global mean/variance normalisation (CMVN).

Both are ``nn.Module``s so that they run on the model's device and travel inside its checkpoint:
the model receives raw waveforms and computes its own features.

Frames are computed without centring (``center=False``): frame ``t`` covers samples
``[t * hop, t * hop + n_fft)``, so every frame inside an utterance's length sees only its own
samples. An utterance therefore gets the same features alone or zero-padded in a batch.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from asr.config import FeatureConfig
from asr.nn.masks import lengths_to_mask

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
        valid = lengths_to_mask(feat_lengths, feats.size(1))  # (B, T)
        return feats.masked_fill(~valid[..., None], 0.0), feat_lengths


class GlobalCMVN(nn.Module):
    """Normalise every feature bin by the training set's mean and standard deviation.

    Starts as the identity (mean 0, std 1); the real statistics come from ``from_stats`` (see
    ``asr.cmvn`` for computing them) or from a checkpoint's state_dict (``mean`` and ``std`` are
    buffers).
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

    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features, (B,) lengths -> (B, T, F) normalised; padded frames stay 0."""
        valid = lengths_to_mask(feat_lengths, feats.size(1))  # (B, T)
        normalised = (feats - self.mean) / self.std
        return normalised.masked_fill(~valid[..., None], 0.0)
