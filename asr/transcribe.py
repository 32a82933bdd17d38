"""`asr transcribe`: audio files -> text with a trained experiment.

Files are read at the model's sample rate (any rate soundfile reads, stereo mixed down). Audio
longer than ``segment_seconds`` is cut into segments at the quietest 10 ms frame of the last
third of each window, so cuts tend to fall in pauses rather than inside words; the segment
texts are joined with spaces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console

from asr.audio import AudioError, load_audio
from asr.data.dataset import pad
from asr.decode.options import DecodeOptions
from asr.decode.search import decode_batch
from asr.experiment import load_for_inference
from asr.progress import counting_progress

FRAME_SECONDS = 0.01


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
    """Transcribe each file; a missing or unreadable one gets ``error`` set, the rest go on."""
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    model, tokenizer, config = load_for_inference(exp_dir, checkpoint, device)
    rate = config.features.sample_rate
    results = []
    with counting_progress(console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("transcribing", total=len(paths))
        for path in paths:
            result = Transcription(str(path))
            try:
                wave, _ = load_audio(path, rate)
            except AudioError as err:
                result.error = str(err)
            else:
                result.duration = wave.numel() / rate
                segments = [s for s in split_segments(wave, rate, segment_seconds) if s.numel() > 0]
                for first in range(0, len(segments), options.batch_size):
                    waves, lengths = pad(segments[first : first + options.batch_size])
                    for nbest in decode_batch(model, waves.to(device), lengths.to(device), options):
                        result.segments.append(tokenizer.decode(nbest[0].tokens) if nbest else "")
                result.text = " ".join(t for t in result.segments if t)
            results.append(result)
            progress.advance(task)
    return results
