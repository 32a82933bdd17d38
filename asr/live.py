"""Audio fed to a :class:`asr.decode.streaming.RecognitionStream` as if it arrived live: a file
read in pieces of one chunk, or raw 16-bit little-endian mono PCM at the model's rate from a
pipe (``-``: standard input, e.g. ``arecord -f S16_LE -r 16000 -c 1 | asr transcribe --stream -``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from asr.audio import load_audio
from asr.decode.streaming import RecognitionStream, StreamResult

STDIN = "-"


def file_pieces(path: str | Path, rate: int, piece_samples: int) -> Iterator[torch.Tensor]:
    """(S,) float32 pieces of ``piece_samples`` of an audio file resampled to ``rate``."""
    wave = load_audio(path, rate)[0]
    for start in range(0, wave.numel(), piece_samples):
        yield wave[start : start + piece_samples]


def pcm_pieces(source: BinaryIO, piece_samples: int) -> Iterator[torch.Tensor]:
    """(S,) float32 pieces of raw s16le PCM, as they arrive (the last one may be shorter)."""
    pending = b""
    while chunk := source.read(2 * piece_samples - len(pending)):
        pending += chunk
        if len(pending) >= 2 * piece_samples:
            yield _samples(pending)
            pending = b""
    if len(pending) >= 2:
        yield _samples(pending[: len(pending) // 2 * 2])


def _samples(data: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)


def stream_source(
    stream: RecognitionStream, source: str | Path, rate: int, chunk_ms: float, on_partial: Callable[[str], None]
) -> StreamResult:
    """Feed ``source`` (a path, or ``-`` for PCM on stdin) piece by piece, calling ``on_partial``
    with the partial text after each piece; return the final result."""
    piece = max(1, round(chunk_ms / 1000 * rate))
    pieces = pcm_pieces(sys.stdin.buffer, piece) if str(source) == STDIN else file_pieces(source, rate, piece)
    for samples in pieces:
        on_partial(stream.accept(samples))
    return stream.finish()
