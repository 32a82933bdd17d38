"""The Transformer encoder run chunk by chunk on a live stream of feature frames.

Its outputs equal :meth:`asr.nn.encoder.Encoder.forward` under the same chunk mask
(``chunk=(C, left_chunks)``, see :mod:`asr.nn.chunks`) to float rounding: the subsampling
convolutions are unpadded in time, so an output frame depends only on its own input frames (the
last ``R - S`` input frames are kept for the next chunk, R the receptive field and S the
stride), and each block keeps the keys and values of the left context it may attend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from asr.nn.attention import KeyValue
from asr.nn.encoder import Encoder
from asr.nn.subsampling import ConvSubsampling


@dataclass
class EncoderStream:
    """What one stream has left over between calls."""

    pending: Tensor  # (1, P, F) feature frames not yet turned into encoder frames
    offset: int = 0  # encoder frames emitted so far
    left: list[KeyValue | None] = field(default_factory=list)  # per block: (1, H, L, Dh) each


class StreamingEncoder:
    """Feeds an :class:`Encoder` C encoder frames at a time (C * stride feature frames)."""

    def __init__(self, encoder: Encoder, chunk: int, left_chunks: int = -1):
        if not isinstance(encoder, Encoder) or not isinstance(encoder.subsampling, ConvSubsampling):
            raise ValueError("streaming needs the Transformer encoder with the conv2d stem (model.encoder.type transformer)")
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1 encoder frame, got {chunk}")
        self.encoder = encoder
        self.chunk = chunk
        self.left_chunks = left_chunks
        self.stride = 1
        for _, stride in encoder.subsampling.layers:
            self.stride *= stride
        self.receptive = encoder.subsampling.min_input_frames

    def start(self, n_mels: int, device: torch.device | str = "cpu") -> EncoderStream:
        return EncoderStream(torch.zeros(1, 0, n_mels, device=device), left=[None] * len(self.encoder.blocks))

    @torch.inference_mode()
    def accept(self, stream: EncoderStream, feats: Tensor, final: bool = False) -> Tensor:
        """Append (1, T, F) normalised feature frames; return the encoder frames (1, T', D) now
        final: whole chunks, and with ``final`` also the last partial one."""
        stream.pending = torch.cat([stream.pending, feats], dim=1)
        outputs = []
        while (ready := self._ready_frames(stream.pending.shape[1])) >= self.chunk or (final and ready > 0):
            outputs.append(self._chunk(stream, min(ready, self.chunk)))
        if not outputs:
            return stream.pending.new_zeros(1, 0, self.encoder.d_model)
        return torch.cat(outputs, dim=1)

    def _ready_frames(self, frames: int) -> int:
        return 0 if frames < self.receptive else (frames - self.receptive) // self.stride + 1

    def _chunk(self, stream: EncoderStream, frames: int) -> Tensor:
        needed = (frames - 1) * self.stride + self.receptive
        x, _ = self.encoder.subsampling(stream.pending[:, :needed], torch.tensor([needed], device=stream.pending.device))
        stream.pending = stream.pending[:, frames * self.stride :]
        x = self.encoder.embed(x, stream.offset)
        keep = None if self.left_chunks < 0 else self.left_chunks * self.chunk
        for index, block in enumerate(self.encoder.blocks):
            x, (keys, values) = block.forward_chunk(x, stream.left[index])
            if keep is not None:  # the next chunk attends only the last left_chunks chunks
                start = max(keys.shape[2] - keep, 0)
                keys, values = keys[:, :, start:], values[:, :, start:]
            stream.left[index] = (keys, values)
        stream.offset += frames
        return self.encoder.norm(x)
