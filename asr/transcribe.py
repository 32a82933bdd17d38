"""`asr transcribe`: audio files -> text with a trained experiment.

Files are read at the model's sample rate (any rate soundfile reads, stereo mixed down). Audio
longer than ``segment_seconds`` is cut into segments at the quietest 10 ms frame of the last
third of each window, so cuts tend to fall in pauses rather than inside words; the segment
texts are joined with spaces.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from asr.audio import AudioError, load_audio
from asr.data.dataset import pad
from asr.decode.budget import check_decode_memory
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch
from asr.experiment import load_for_inference
from asr.memory import MemoryBudgetError
from asr.model import ASRModel
from asr.progress import counting_progress
from asr.text.tokenizer import Tokenizer

FRAME_SECONDS = 0.01
MAX_SEGMENT_SECONDS = 600.0  # segments are decoded whole: attention memory grows with length squared


@dataclass
class Transcription:
    path: str
    text: str = ""
    duration: float = 0.0  # seconds of audio
    segments: list[str] = field(default_factory=list)  # text of each segment, in order
    error: str | None = None  # why the file could not be transcribed

    def to_json(self) -> dict:
        return asdict(self)


def split_segments(wave: torch.Tensor, sample_rate: int, max_seconds: float) -> list[torch.Tensor]:
    """Cut (S,) audio into pieces of at most ``max_seconds``, each cut at the middle of the
    lowest-energy 10 ms frame within the last third of its window (first such frame on a tie).

    The pieces are views of ``wave``; concatenated, they are ``wave`` again."""
    limit = max(1, int(max_seconds * sample_rate))
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    segments = []
    start = 0
    while wave.numel() - start > limit:
        search_from = (2 * limit // 3) // frame * frame
        frames = (limit - search_from) // frame  # whole frames between 2/3 of the window and its end
        if frames == 0:  # a window shorter than a frame or two: cut at the limit
            cut = limit
        else:
            tail = wave[start + search_from : start + search_from + frames * frame]
            energy = tail.reshape(frames, frame).square().mean(dim=1)  # (frames,)
            cut = max(1, search_from + int(energy.argmin()) * frame + frame // 2)
        segments.append(wave[start : start + cut])
        start += cut
    segments.append(wave[start:])
    return segments


def display_path(path: str | Path) -> str:
    """A file name as printable text: bytes that are not UTF-8 (kept by Python as surrogates)
    are shown as ``\\xNN`` escapes instead of failing when printed or written as JSON."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def check_segment_seconds(segment_seconds: float) -> None:
    if not (isinstance(segment_seconds, (int, float)) and 0 < segment_seconds <= MAX_SEGMENT_SECONDS):
        raise ValueError(
            f"--segment-seconds must be > 0 and <= {MAX_SEGMENT_SECONDS:g}, got {segment_seconds!r} "
            "(segment_seconds: longer audio is cut into segments of at most this length)"
        )


def transcribe_files(
    exp_dir: str | Path,
    paths: list[str | Path],
    options: DecodeOptions,
    *,
    checkpoint: str | Path | None = None,
    segment_seconds: float = 20.0,
    device: str | torch.device = "cpu",
    console: Console | None = None,
) -> list[Transcription]:
    """Transcribe each file; a missing, unreadable, non-finite, silent or too large one gets
    ``error`` set, the rest go on."""
    check_segment_seconds(segment_seconds)
    model, tokenizer, config = load_for_inference(exp_dir, checkpoint, device)
    rate = config.features.sample_rate
    # Segments are at most segment_seconds long: the largest batch is known before any work.
    longest = int(segment_seconds * rate)
    check_decode_memory(config, model.vocab_size, options, options.batch_size, longest, device)
    results = []
    with counting_progress(console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("transcribing", total=len(paths))
        for path in paths:
            result = Transcription(display_path(path))
            try:  # a file that is there to be transcribed is expected to hold speech
                wave, _ = load_audio(path, rate, expect_speech=True)
            except (AudioError, MemoryBudgetError) as err:
                result.error = display_path(str(err))
            else:
                _transcribe_wave(model, tokenizer, wave, rate, segment_seconds, options, device, result)
            results.append(result)
            progress.advance(task)
    return results


def _transcribe_wave(
    model: ASRModel, tokenizer: Tokenizer, wave: torch.Tensor, rate: int, segment_seconds: float,
    options: DecodeOptions, device: str | torch.device, result: Transcription,
) -> None:
    """Fill ``result`` with the text of (S,) ``wave``, decoded in segments."""
    result.duration = wave.numel() / rate
    segments = [s for s in split_segments(wave, rate, segment_seconds) if s.numel() > 0]
    for first in range(0, len(segments), options.batch_size):
        waves, lengths = pad(segments[first : first + options.batch_size])
        for nbest in decode_batch(model, waves.to(device), lengths.to(device), options):
            result.segments.append(tokenizer.decode(nbest[0].tokens) if nbest else "")
    result.text = " ".join(t for t in result.segments if t)
