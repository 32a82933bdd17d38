"""Bad input to the Python API: each is a clear error of our own (a ValueError saying what
would be valid), raised before any work, never an empty transcript, a library's error or
gigabytes allocated."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import asr
from asr.api import AudioInputError
from asr.audio import AudioContentError, AudioError
from reliability_kit import speechlike, write_wave

ONE_SECOND = speechlike(1.0)


@pytest.fixture(scope="module")
def recognizer(world):
    return asr.load(world.exp)


@pytest.mark.parametrize(
    "audio, error, message",
    [(np.full(16000, np.nan, dtype=np.float32), AudioContentError, "<array>: non-finite audio"),
     (torch.full((16000,), float("inf")), AudioContentError, "<tensor>: non-finite audio"),
     (np.full(16000, 1e300), AudioContentError, "<array>: samples beyond float32's range (up to 1e+300)"),
     (ONE_SECOND.astype(np.complex64), AudioInputError, "must be real numbers, got an array of complex64"),
     ([0.1, 0.2, 0.3], AudioInputError, "a file path or a numpy array / torch tensor of samples, got list")],
    ids=["all NaN", "Inf tensor", "1e300 float64", "complex", "a list"],
)  # fmt: skip
def test_unusable_samples_are_refused(recognizer, audio, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        recognizer.transcribe(audio, method="ctc_greedy")


@pytest.mark.parametrize("rate", [0, 1, -16000, 16000.5, 999, 384001, float("nan"), "16000", True])
def test_sample_rates_outside_1000_to_384000_hz_are_refused(recognizer, rate):
    short = ONE_SECOND[:160]  # were it resampled from 1 Hz after all: megabytes, not gigabytes
    with pytest.raises(AudioInputError, match=f"sample_rate={rate!r} is not a .*from 1000 to 384000"):
        recognizer.transcribe(short, sample_rate=rate, method="ctc_greedy")


def test_a_whole_float_or_numpy_sample_rate_is_a_sample_rate(recognizer):
    expected = recognizer.transcribe(ONE_SECOND, method="ctc_greedy").text
    assert recognizer.transcribe(ONE_SECOND, sample_rate=16000.0, method="ctc_greedy").text == expected
    assert recognizer.transcribe(ONE_SECOND, sample_rate=np.int64(16000), method="ctc_greedy").text == expected


def test_a_bytes_path_is_a_path(recognizer, tmp_path):
    wav = write_wave(tmp_path / "a.wav", ONE_SECOND)
    by_bytes = recognizer.transcribe(os.fsencode(wav), method="ctc_greedy")
    assert by_bytes.path == str(wav)
    assert by_bytes.text == recognizer.transcribe(wav, method="ctc_greedy").text
    with pytest.raises(AudioError, match="gone.wav: file not found"):
        recognizer.transcribe(os.fsencode(tmp_path / "gone.wav"), method="ctc_greedy")


def test_a_file_at_1_hz_is_refused_by_its_header(recognizer, tmp_path):
    wav = write_wave(tmp_path / "slow.wav", ONE_SECOND[:100], rate=1)
    with pytest.raises(AudioError, match="slow.wav: the header's sample rate 1 Hz is not a sample rate from 1000 to 384000 Hz"):
        recognizer.transcribe(wav, method="ctc_greedy")
