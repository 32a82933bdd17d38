"""What the Python API (:mod:`asr.api`) is given to transcribe, checked: a file path (``str``,
``bytes`` or ``os.PathLike``) or a (samples,) / (channels, samples) array or tensor of real
numbers at a sample rate from :data:`asr.audio.MIN_RATE` to :data:`asr.audio.MAX_RATE` Hz.

Anything else is an :class:`AudioInputError` (a ValueError) saying what would be valid, before
any work: NaN, infinite or out-of-float32-range samples would give an empty transcript, a
sample rate of 1 Hz would resample one second into gigabytes.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import Tensor

from asr.audio import MAX_RATE, MIN_RATE, NONFINITE, AudioContentError, load_audio, rate_problem

Audio = Union[str, bytes, os.PathLike, np.ndarray, Tensor]


class AudioInputError(ValueError):
    """Audio given to the API that cannot be transcribed: its type, shape or sample rate."""


class AudioShapeError(AudioInputError):
    """An in-memory audio array of a shape that is not one recording."""


def audio_name(audio: Audio) -> str:
    """What a result's ``path`` says: the file, or ``<tensor>`` / ``<array>``."""
    if isinstance(audio, (str, bytes, os.PathLike)):
        return os.fsdecode(audio)
    return "<tensor>" if isinstance(audio, Tensor) else "<array>"


def wave_of(audio: Audio, sample_rate: int | float | None, target_rate: int) -> Tensor:
    """Any accepted audio -> (S,) float32 at ``target_rate``, on the CPU. ``sample_rate`` is the
    rate of an array or tensor (None: ``target_rate``); a file has its own."""
    if isinstance(audio, (str, bytes, os.PathLike)):
        return load_audio(Path(os.fsdecode(audio)), target_rate)[0]
    if not isinstance(audio, (np.ndarray, Tensor)):
        raise AudioInputError(
            f"audio must be a file path or a numpy array / torch tensor of samples, got {type(audio).__name__}"
        )
    rate = checked_rate(target_rate if sample_rate is None else sample_rate)
    return to_mono(_float_samples(audio), rate, target_rate)


def checked_rate(sample_rate: object) -> int:
    """``sample_rate`` as an int Hz, or an AudioInputError naming the valid range."""
    whole = isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool) and float(sample_rate).is_integer()
    problem = rate_problem(int(sample_rate)) if whole else f"is not a whole number of Hz from {MIN_RATE} to {MAX_RATE}"  # type: ignore[arg-type]
    if problem:
        raise AudioInputError(f"sample_rate={sample_rate!r} {problem}")
    return int(sample_rate)  # type: ignore[arg-type]


def _float_samples(audio: np.ndarray | Tensor) -> Tensor:
    """The samples as a float32 CPU tensor; NaN, Inf, or values float32 cannot hold (1e300 in a
    float64 array) are an AudioContentError."""
    original = torch.as_tensor(audio).detach().cpu() if isinstance(audio, Tensor) else None
    if original is None:
        if audio.dtype.kind not in "fiu":
            raise AudioInputError(f"audio samples must be real numbers, got an array of {audio.dtype}")
        original = torch.from_numpy(np.ascontiguousarray(audio))
    elif original.is_complex() or original.dtype == torch.bool:
        raise AudioInputError(f"audio samples must be real numbers, got a tensor of {original.dtype}")
    if original.is_floating_point() and not bool(torch.isfinite(original).all()):
        raise AudioContentError(audio_name(audio), NONFINITE)
    wave = original.float()
    if not bool(torch.isfinite(wave).all()):
        peak = float(original.abs().max())
        raise AudioContentError(audio_name(audio), f"samples beyond float32's range (up to {peak:.3g}); samples are expected in [-1, 1]")
    return wave


def to_mono(wave: Tensor, rate: int, target_rate: int) -> Tensor:
    """(S,), (C, S) or (S, C) float32 audio -> (S,) at ``target_rate``; channels are averaged,
    the shorter axis being the channels."""
    import torchaudio.functional as AF

    if wave.dim() == 2:
        wave = wave.mean(dim=0 if wave.shape[0] <= wave.shape[1] else 1)
    if wave.dim() != 1:
        raise AudioShapeError(f"audio must be (samples,) or (channels, samples), got shape {tuple(wave.shape)}")
    if rate != target_rate and wave.numel() > 0:
        wave = AF.resample(wave, rate, target_rate)
    return wave
