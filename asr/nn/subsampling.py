"""Convolutional subsampling of log-mel frames before the Transformer encoder.

Convolutions are unpadded in time, so an output frame only sees real input frames when the
input is zero-padded in a batch, and output lengths follow the convolution formula exactly:
L_out = (L_in - kernel) // stride + 1 per layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from asr.nn.masks import lengths_to_mask
from asr.precision import cpu_autocast_on

# (kernel, stride) of each Conv2d layer for each overall time reduction.
LAYERS: dict[int, list[tuple[int, int]]] = {
    4: [(3, 2), (3, 2)],
    6: [(3, 2), (5, 3)],
    8: [(3, 2), (3, 2), (3, 2)],
}


class ConvSubsampling(nn.Module):
    def __init__(self, n_mels: int, d_model: int, channels: int, factor: int = 4):
        super().__init__()
        if factor not in LAYERS:
            raise ValueError(f"subsampling factor {factor} is not one of {sorted(LAYERS)}")
        self.layers = LAYERS[factor]
        convs: list[nn.Module] = []
        in_channels, freq = 1, n_mels
        for kernel, stride in self.layers:
            convs += [nn.Conv2d(in_channels, channels, kernel, stride), nn.ReLU()]
            in_channels, freq = channels, (freq - kernel) // stride + 1
        self.convs = nn.Sequential(*convs)
        self.project = nn.Linear(channels * freq, d_model)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Exact output lengths; 0 for inputs shorter than ``min_input_frames``."""
        for kernel, stride in self.layers:
            lengths = (torch.div(lengths - kernel, stride, rounding_mode="floor") + 1).clamp(min=0)
        return lengths

    @property
    def min_input_frames(self) -> int:
        """Fewest input frames that give one output frame."""
        frames = 1
        for kernel, stride in reversed(self.layers):
            frames = (frames - 1) * stride + kernel
        return frames

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, F) frames -> (B, T', d_model) and (B,) lengths T'."""
        if feats.shape[1] < self.min_input_frames:  # too short for one output frame: length 0
            feats = nn.functional.pad(feats, (0, 0, 0, self.min_input_frames - feats.shape[1]))
        x = self.convs(feats.unsqueeze(1))  # (B, C, T', F')
        batch, channels, time, freq = x.shape
        x = self.project(x.transpose(1, 2).reshape(batch, time, channels * freq))
        return x, self.output_lengths(lengths)


class Conv1dStem(nn.Module):
    """Whisper's stem: Conv1d k3 s1 then Conv1d k3 s2, both padded by 1 and followed by GELU.

    Output lengths are ceil(L / 2). Frames past an utterance's length are zeroed between the
    two convolutions, so that an utterance gets the same output alone or padded in a batch.
    """

    min_input_frames = 1
    layers = ((3, 1), (3, 2))  # (kernel, stride): the frame clock of word timestamps reads the strides

    def __init__(self, n_mels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2, padding=1)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths - 1, 2, rounding_mode="floor") + 1

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, F) frames -> (B, ceil(T/2), d_model) and (B,) lengths."""
        if cpu_autocast_on(feats):
            # fp32 under CPU bf16 autocast: the stem's precision decides bf16 decoding's
            # transcripts (tiny.en greedy: 41 of 44 the same as fp32 with a bf16 stem, 43 with
            # an fp32 one), for about 7% of the encoder's time.
            with torch.autocast("cpu", enabled=False):
                return self._forward(feats.float(), lengths)
        return self._forward(feats, lengths)

    def _forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = nn.functional.gelu(self.conv1(feats.transpose(1, 2)))  # (B, D, T)
        if int(lengths.min()) < x.shape[2]:
            valid = lengths_to_mask(lengths, x.shape[2])  # (B, T)
            x = x.masked_fill(~valid[:, None, :], 0.0)
        x = nn.functional.gelu(self.conv2(x))  # (B, D, T')
        return x.transpose(1, 2), self.output_lengths(lengths)
