"""Read audio files: any format soundfile can decode -> mono float32 at the rate asked for.

soundfile (libsndfile) rather than ``torchaudio.load``: recent torchaudio delegates loading to
torchcodec, which is an extra native dependency; libsndfile reads WAV, FLAC and OGG on its own.
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
import torch
import torchaudio.functional as AF


class AudioError(ValueError):
    """An audio file that is missing or cannot be decoded; the message names the file."""


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
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{path}: cannot read audio header ({err})") from None
    return info.frames, info.samplerate, info.channels


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """Decode a file to a mono float32 waveform of shape (samples,), values in [-1, 1].

    Channels are averaged. When ``sample_rate`` is given and differs from the file's, the waveform
    is resampled (band-limited sinc interpolation) and that rate is returned.
    """
    path = Path(path)
    _check_exists(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    waveform = torch.from_numpy(data).mean(dim=1)  # (samples,)
    if sample_rate is not None and sample_rate != rate:
        if waveform.numel() > 0:  # resample() fails on empty input; empty stays empty
            waveform = AF.resample(waveform, rate, sample_rate)
        rate = sample_rate
    return waveform, rate
