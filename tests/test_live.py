"""Feeding a stream: raw PCM in pieces as it arrives, files in chunks, and the API's stream()."""

import io

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
from asr.api import OptionError
from asr.live import pcm_pieces, stream_source

TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]


class Trickle(io.RawIOBase):
    """A pipe that hands out at most 333 bytes per read, as a live source does."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.data.read(min(size, 333) if size > 0 else 333)


def test_pcm_arrives_in_whole_pieces_with_the_samples_it_carries():
    samples = (np.arange(2500) % 200 - 100).astype("<i2")
    pieces = list(pcm_pieces(Trickle(samples.tobytes() + b"\x01"), 1000))  # a stray odd byte at the end
    assert [p.numel() for p in pieces] == [1000, 1000, 500]
    assert torch.equal(torch.cat(pieces), torch.from_numpy(samples.astype(np.float32) / 32768.0))


def test_a_file_streamed_through_the_api_gives_partials_and_a_final_text(random_experiment, tmp_path):
    exp = random_experiment(TEXTS, decoder_layers=1)[0]
    recognizer = asr.load(exp)
    t = np.arange(32000) / 16000
    wave = (0.07 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)).astype(np.float32)
    sf.write(tmp_path / "a.wav", wave, 16000)
    partials: list[str] = []
    stream = recognizer.stream(chunk_ms=400, endpoint_ms=0)
    result = stream_source(stream, tmp_path / "a.wav", 16000, 400, partials.append)
    assert len(partials) == 5  # 2 s in pieces of 400 ms
    assert any(partials) and result.text  # a peaked random model says something; the final may be rescored
    again = recognizer.stream(chunk_ms=400, endpoint_ms=0)
    for start in range(0, wave.size, 6400):
        again.accept(wave[start : start + 6400])  # numpy pieces are accepted as they are
    assert again.finish().text == result.text
    with pytest.raises(OptionError, match="unknown streaming option 'chunk'"):
        recognizer.stream(chunk=400)
