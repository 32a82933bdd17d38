"""Chunked self-attention for streaming encoders (WeNet's U2 dynamic chunk training, Zhang et
al. 2020, arXiv:2012.05481).

Encoder frames are cut into chunks of C frames from the start of the utterance. A frame attends
to every frame of its own chunk and of the ``left_chunks`` chunks before it (all of them for
-1), never to a later chunk: the output for a chunk is then final as soon as that chunk's audio
has arrived, which is what lets :class:`asr.nn.streaming.StreamingEncoder` compute it
incrementally. Training with chunk sizes drawn per batch (:func:`draw_chunk`) gives one model
that decodes both with full context and in chunks of any size.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.config import ChunkConfig

FULL_CONTEXT = 0  # chunk size meaning "no chunking"


def chunk_mask(frames: int, chunk: int, left_chunks: int = -1, device: torch.device | None = None) -> Tensor:
    """(T, T) bool, True where query frame i may attend key frame j under chunks of ``chunk``
    frames with ``left_chunks`` chunks of left context (-1: all)."""
    index = torch.arange(frames, device=device) // chunk  # (T,) chunk of each frame
    query, key = index[:, None], index[None, :]
    allowed = key <= query
    if left_chunks >= 0:
        allowed &= key >= query - left_chunks
    return allowed


def draw_chunk(config: ChunkConfig, frames: int) -> tuple[int, int]:
    """One training batch's (chunk size, left chunks), drawn from the global torch RNG (so a
    resumed run draws the same); chunk size FULL_CONTEXT means full attention."""
    if not config.dynamic or float(torch.rand(())) < config.full_context_share:
        return FULL_CONTEXT, -1
    chunk = int(torch.randint(1, config.max_frames + 1, ()))
    left = config.left_chunks
    if config.random_left:
        left = int(torch.randint(0, max(frames - 1, 0) // chunk + 1, ()))
    return chunk, left
