"""Data augmentation: SpecAugment on features and speed perturbation on waveforms.

SpecAugment follows Park et al. 2019, "SpecAugment: A Simple Data Augmentation Method for
Automatic Speech Recognition" (arXiv:1904.08779), section 2: time warping, then frequency masks,
then time masks. Every mask and warp respects each utterance's true length, so padding is never
"augmented" into the utterance and short utterances are not wiped out.
"""

from __future__ import annotations

import random

import torch
import torchaudio
from torch import nn

from asr.config import AugmentConfig
from asr.nn.masks import lengths_to_mask


def random_masks(
    max_width: torch.Tensor, extent: torch.Tensor, size: int, count: int
) -> torch.Tensor:
    """``count`` random spans per row, drawn independently for each row.

    A span's width is uniform in [0, max_width[b]] and its start uniform in
    [0, extent[b] - width], as in SpecAugment section 2.

    Args:
        max_width: (B,) long, the widest span allowed in each row.
        extent: (B,) long, where each row's valid region ends (spans stay inside it).
        size: length of the axis being masked.
        count: number of spans per row.
    Returns:
        (B, size) bool, True where any span covers the position.
    """
    positions = torch.arange(size, device=extent.device)  # (size,)
    covered = torch.zeros(extent.size(0), size, dtype=torch.bool, device=extent.device)
    for _ in range(count):
        # rand * (n + 1) floored is uniform over 0..n for each row's own n, without a host sync.
        width = (torch.rand(extent.shape, device=extent.device) * (max_width + 1)).long()
        width = torch.minimum(width, extent)
        start = (torch.rand(extent.shape, device=extent.device) * (extent - width + 1)).long()
        covered |= (positions >= start[:, None]) & (positions < (start + width)[:, None])
    return covered


def time_warp(feats: torch.Tensor, lengths: torch.Tensor, window: int) -> torch.Tensor:
    """Warp each utterance in time around a random point (SpecAugment section 2).

    A point ``c`` is drawn in [window + 1, length - window - 2] and moved by ``w`` uniform in
    [-window, window]; the frames before it are stretched linearly onto [0, c + w] and the frames
    after it onto [c + w, length - 1]. The first and last frames stay where they are. Utterances
    too short for the window (length < 2 * window + 3) are left unchanged.

    Args:
        feats: (B, T, F) features.
        lengths: (B,) long, valid frames per utterance.
        window: the largest shift W, in frames.
    Returns:
        (B, T, F) warped features, padded frames 0.
    """
    B, T, F = feats.shape
    device = feats.device
    # Frame positions in float32 whatever the features' dtype: bf16 cannot count past 256.
    last = (lengths - 1).clamp(min=0).float()  # (B,) index of the final valid frame
    can_warp = lengths >= 2 * window + 3  # (B,)
    # Centre c uniform over [window + 1, length - window - 2] and shift w uniform over [-W, W].
    span = (lengths - 2 * window - 2).clamp(min=1).float()
    centre = window + 1 + (torch.rand(B, device=device) * span).floor()  # (B,)
    shift = (torch.rand(B, device=device) * (2 * window + 1)).floor() - window  # (B,)
    shift = torch.where(can_warp, shift, torch.zeros_like(shift))
    target = centre + shift  # (B,) where the centre lands

    # For every output frame t, the (fractional) input frame it samples: piecewise linear.
    t = torch.arange(T, device=device, dtype=torch.float32)[None, :]  # (1, T)
    before = t * (centre / target)[:, None]  # maps [0, c + w] onto [0, c]
    slope = (last - centre) / (last - target).clamp(min=1)  # maps [c + w, last] onto [c, last]
    after = centre[:, None] + (t - target[:, None]) * slope[:, None]
    source = torch.where(t <= target[:, None], before, after)  # (B, T)
    source = torch.where(can_warp[:, None], source, t.expand(B, T))
    source = torch.minimum(source.clamp(min=0), last[:, None])

    # Linear interpolation between the two neighbouring input frames.
    low = source.floor()
    frac = (source - low).to(feats.dtype)[..., None]  # (B, T, 1)
    low = low.long()
    high = torch.minimum(low + 1, last.long()[:, None])
    low_frames = feats.gather(1, low[..., None].expand(B, T, F))  # (B, T, F)
    high_frames = feats.gather(1, high[..., None].expand(B, T, F))
    warped = low_frames * (1 - frac) + high_frames * frac
    return warped.masked_fill(~lengths_to_mask(lengths, T)[..., None], 0.0)


class SpecAugment(nn.Module):
    """Time warp, frequency masks and time masks on (B, T, F) features; active only in training.

    ``spec_augment: false`` turns every part off, time warp included. Masks are filled with 0,
    which is the mean after global CMVN. A time mask is at most ``floor(time_mask_ratio *
    length)`` frames wide for each utterance when ``time_mask_ratio`` > 0 (ESPnet's
    ``time_mask_width_ratio_range: [0, ratio]``, there taken of the padded batch length, here of
    each utterance's own), else ``min(time_mask_width, max_time_fraction * length)`` frames, so
    that short utterances keep most of their frames.
    """

    def __init__(self, config: AugmentConfig, max_time_fraction: float = 0.2):
        super().__init__()
        self.config = config
        self.max_time_fraction = max_time_fraction

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features, (B,) lengths -> (B, T, F) augmented features (a new tensor)."""
        cfg = self.config
        if not self.training or not cfg.spec_augment:
            return feats
        B, T, F = feats.shape
        if cfg.time_warp and cfg.time_warp_window > 0:
            feats = time_warp(feats, lengths, cfg.time_warp_window)
        if cfg.freq_masks > 0 and cfg.freq_mask_width > 0:
            bins = torch.full((B,), F, device=feats.device)
            widest = torch.full((B,), min(cfg.freq_mask_width, F), device=feats.device)
            covered = random_masks(widest, bins, F, cfg.freq_masks)  # (B, F)
            feats = feats.masked_fill(covered[:, None, :], 0.0)
        if cfg.time_masks > 0:
            widest = self.time_mask_widths(lengths)  # (B,)
            covered = random_masks(widest, lengths, T, cfg.time_masks)  # (B, T)
            feats = feats.masked_fill(covered[:, :, None], 0.0)
        return feats

    def time_mask_widths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) frames -> (B,) long, the widest time mask allowed in each utterance."""
        cfg = self.config
        if cfg.time_mask_ratio > 0:
            return (lengths * cfg.time_mask_ratio).floor().long()
        return torch.clamp((lengths * self.max_time_fraction).long(), max=cfg.time_mask_width)


def choose_speed(speeds: tuple[float, ...], seed: int, epoch: int, index: int) -> float:
    """The speed factor for utterance ``index`` in ``epoch``: random, but reproducible.

    Seeded from the text "seed:epoch:index", which ``random`` hashes with SHA-512: stable across
    processes and Python runs (unlike ``hash()``), with no collisions between (epoch, index) pairs,
    so a resumed run or a DataLoader worker picks the same factor as the original run.
    """
    return random.Random(f"{seed}:{epoch}:{index}").choice(speeds)


def speed_perturb(wave: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """Play ``wave`` (S,) ``factor`` times faster (tempo and pitch, as in Ko et al. 2015).

    Returns about S / factor samples. Same as ``torchaudio.functional.speed``, but the source rate
    is rounded rather than truncated (int(0.9 * 16000) would be fine, others need not be).
    """
    if factor == 1.0:
        return wave
    return torchaudio.functional.resample(wave, round(sample_rate * factor), sample_rate)
