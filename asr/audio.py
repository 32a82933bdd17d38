"""Read audio files: any format soundfile can decode -> mono float32 at the rate asked for.

soundfile (libsndfile) rather than ``torchaudio.load``: recent torchaudio delegates loading to
torchcodec, which is an extra native dependency; libsndfile reads WAV, FLAC and OGG on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.memory import require


class AudioError(ValueError):
    """An audio file that is missing or cannot be decoded; the message names the file."""


class AudioContentError(AudioError):
    """Audio that decodes but cannot be used: non-finite samples, or silence where speech is
    expected. ``reason`` is one of the reasons below (as listed in rejection reports)."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


# Content problems, as written in rejection reports (.rejected.tsv).
NONFINITE = "non-finite audio (NaN or Inf samples)"
SILENT = "silent audio (no sample above -80 dBFS)"
# -80 dBFS: below the quietest speech in any corpus, above the dither of a 16-bit recording of
# silence (a few least significant bits, 2**-15 = -90 dBFS).
SILENCE_PEAK = 1e-4
_BLOCK = 1 << 16  # frames read at a time when scanning a whole file


def content_problem(wave: torch.Tensor, expect_speech: bool) -> str | None:
    """Why a decoded waveform (any shape) cannot be used, or None. Empty audio is not judged
    here (it has its own handling): only non-finite samples, and silence when speech is expected."""
    if wave.numel() == 0:
        return None
    if not bool(torch.isfinite(wave).all()):
        return NONFINITE
    if expect_speech and float(wave.abs().max()) < SILENCE_PEAK:
        return SILENT
    return None


def scan_file(f: sf.SoundFile, expect_speech: bool) -> tuple[int, str | None]:
    """Decode an open file block by block (bounded memory, whatever its length); return
    ``(frames decoded, content problem or None)``. Fewer frames than the header announces means
    the file is truncated."""
    frames, finite, peak = 0, True, 0.0
    for block in f.blocks(blocksize=_BLOCK, dtype="float32", always_2d=True):
        frames += len(block)
        if finite and block.size:
            finite = bool(np.isfinite(block).all())
            peak = max(peak, float(np.abs(block).max())) if finite else peak
    if frames and not finite:
        return frames, NONFINITE
    if frames and expect_speech and peak < SILENCE_PEAK:
        return frames, SILENT
    return frames, None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """Return ``(frames, sample_rate, channels)`` read from the file's header."""
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(os.fsencode(path))  # bytes: any file name, UTF-8 or not
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{path}: cannot read audio header ({err})") from None
    return info.frames, info.samplerate, info.channels


def load_audio(
    path: str | Path, sample_rate: int | None = None, expect_speech: bool = False
) -> tuple[torch.Tensor, int]:
    """Decode a file to a mono float32 waveform of shape (samples,), values in [-1, 1].

    Channels are averaged. When ``sample_rate`` is given and differs from the file's, the waveform
    is resampled (band-limited sinc interpolation) and that rate is returned. Non-finite samples
    (possible in float WAV files) are an AudioContentError, and so is silence when
    ``expect_speech``: either would otherwise give an empty transcript or NaN statistics.
    """
    path = Path(path)
    frames, rate, channels = audio_info(path)
    resampled = frames * (sample_rate or rate) // max(1, rate)
    require(  # data, its mono mix and the resampled copy, in float32
        4 * (frames * channels + frames + 2 * resampled),
        f"loading {path} ({frames / max(1, rate) / 3600:.2f} hours of audio)",
        "split the file into shorter ones",
    )
    return decode_audio(os.fsencode(path), path, sample_rate, expect_speech)


def decode_audio(
    source: bytes | BinaryIO, name: str | Path, sample_rate: int | None = None, expect_speech: bool = False
) -> tuple[torch.Tensor, int]:
    """``load_audio`` for an encoded file that is already open or in memory (a tar shard's
    member): ``source`` is a path as bytes or a file object, ``name`` what errors call it."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{name}: cannot decode audio ({err})") from None
    waveform = torch.from_numpy(data).mean(dim=1)  # (samples,)
    reason = content_problem(torch.from_numpy(data), expect_speech)
    if reason:
        raise AudioContentError(name, reason)
    if sample_rate is not None and sample_rate != rate:
        if waveform.numel() > 0:  # resample() fails on empty input; empty stays empty
            waveform = AF.resample(waveform, rate, sample_rate)
        rate = sample_rate
    return waveform, rate
