"""`asr transcribe`: audio -> text, with word times, confidences and n-best, for a trained experiment.

Audio is read at the model's sample rate (any rate soundfile reads, stereo mixed down). Audio
longer than ``segment_seconds`` is cut into segments at the quietest 10 ms frame of the last
third of each window, so cuts tend to fall in pauses rather than inside words. Segments of all
inputs are decoded together in batches; each segment's best hypothesis is then aligned, by the
CTC head (:mod:`asr.decode.align`) or the decoder's cross-attention
(:mod:`asr.decode.attention_align`), for word times and confidences, and the segment texts are
joined with spaces.

:func:`transcribe_waves` is the one pipeline; ``asr transcribe`` (:func:`transcribe_files`) and
the Python API (:mod:`asr.api`) both call it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from rich.console import Console
from torch import Tensor

from asr.audio import AudioError, load_audio
from asr.config import ExperimentConfig
from asr.data.dataset import pad
from asr.decode.align import Word
from asr.decode.budget import check_decode_memory
from asr.decode.hypothesis import Hypothesis, finite, hypothesis_text
from asr.decode.options import DecodeOptions
from asr.decode.task import DecodingTask
from asr.decode.word_times import check_aligner, word_times
from asr.durations import training_max_seconds
from asr.experiment import load_for_inference
from asr.memory import MemoryBudgetError
from asr.model import ASRModel
from asr.progress import counting_progress
from asr.nn.masks import NEG_INF
from asr.text.tokenizer import Tokenizer
from asr.vad import FRAME_SECONDS, speech_frames, split_segments, vad_segments  # noqa: F401 (re-exported)

MAX_SEGMENT_SECONDS = 600.0  # segments are decoded whole: attention memory grows with length squared
# Shorter segments cut most words in two (and an hour of audio into tens of thousands of pieces).
MIN_SEGMENT_SECONDS = 1.0

@dataclass(frozen=True)
class Candidate:
    """One entry of an n-best list: its text and the search's hypothesis (tokens and scores,
    natural-log), written as every hypothesis record is (Hypothesis.record)."""

    text: str
    hypothesis: Hypothesis

    @property
    def score(self) -> float | None:
        """What the search ranked by (None: impossible, -inf)."""
        return finite(self.hypothesis.score)

    @property
    def attention(self) -> float | None:
        return finite(self.hypothesis.attention)

    @property
    def ctc(self) -> float | None:
        return finite(self.hypothesis.ctc)

    def to_json(self) -> dict:
        return self.hypothesis.record(self.text)


@dataclass
class Segment:
    """A stretch of the audio decoded on its own, with times in seconds from the file's start."""

    start: float
    end: float
    text: str = ""
    confidence: float | None = None  # mean of the words' confidences; None without words
    words: list[Word] = field(default_factory=list)
    nbest: list[Candidate] = field(default_factory=list)  # best first; nbest[0].text == text

    def to_json(self) -> dict:
        return {
            "start": self.start, "end": self.end, "text": self.text, "confidence": self.confidence,
            "words": [w.to_json() for w in self.words], "nbest": [c.to_json() for c in self.nbest],
        }  # fmt: skip


@dataclass
class Transcription:
    path: str  # the file, or "<array>" / "<tensor>" for audio passed in memory
    text: str = ""
    duration: float = 0.0  # seconds of audio
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None  # why the file could not be transcribed

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]

    @property
    def confidence(self) -> float | None:
        """Mean word confidence over the whole audio; None when no word was recognised."""
        words = self.words
        return sum(w.confidence for w in words) / len(words) if words else None

    @property
    def nbest(self) -> list[Candidate]:
        """The search's n-best for audio decoded as one segment. For several segments: the
        best of each joined (per-segment lists are in ``segments[i].nbest``)."""
        if len(self.segments) == 1:
            return self.segments[0].nbest
        if not self.segments:
            return [Candidate("", Hypothesis([], NEG_INF))]
        best = [s.nbest[0].hypothesis if s.nbest else Hypothesis([], NEG_INF) for s in self.segments]
        tokens = [token for hyp in best for token in hyp.tokens]
        return [Candidate(self.text, Hypothesis(tokens, sum(hyp.score for hyp in best)))]

    def to_json(self) -> dict:
        return {
            "path": self.path, "text": self.text, "duration": self.duration,
            "confidence": self.confidence, "segments": [s.to_json() for s in self.segments],
            "error": self.error,
        }  # fmt: skip


def segment_bounds(wave: Tensor, sample_rate: int, max_seconds: float) -> list[tuple[int, int]]:
    """(start, end) samples of the non-empty pieces of :func:`split_segments`."""
    bounds, start = [], 0
    for piece in split_segments(wave, sample_rate, max_seconds):
        if piece.numel() > 0:
            bounds.append((start, start + piece.numel()))
        start += piece.numel()
    return bounds


def segment_limit(exp_dir: str | Path, config: ExperimentConfig, requested: float | None) -> tuple[float, str | None]:
    """The segment length to decode with, and a warning when ``requested`` exceeds the longest
    training utterance (a model decodes much worse beyond what it was trained on)."""
    trained = training_max_seconds(exp_dir, config)
    if requested is None:
        return trained, None
    if requested > trained:
        return requested, (
            f"segments of up to {requested:g} s are longer than the longest training utterance "
            f"({trained:.1f} s); expect repeated or missing words (leave --segment-seconds unset "
            f"to cap segments at {trained:.1f} s)"
        )
    return requested, None


def transcribe_waves(
    model: ASRModel,
    tokenizer: Tokenizer,
    waves: list[Tensor],
    options: DecodeOptions,
    *,
    segment_seconds: float = 20.0,
    timestamps: bool = True,
    vad: bool = True,
    names: list[str] | None = None,
    align: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Transcription]:
    """Transcribe (S,) float32 waveforms at the model's rate (see the module docstring).

    Segments are at most ``segment_seconds`` long: the speech regions found by :mod:`asr.vad`,
    or with ``vad`` False, fixed windows cut at their quietest frame. Keeps the
    ``options.nbest`` best hypotheses of each segment; ``timestamps`` False skips the alignment
    (no words, no confidences). ``align``: "ctc" or "cross-attention" (None: ctc where the model
    has a CTC head, :mod:`asr.decode.word_times`). ``names`` become each result's ``path``.
    ``on_progress(done, total)`` is called with the segments decoded so far, before the first
    batch and after each.
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    aligner = check_aligner(align, model) if timestamps else None
    task = DecodingTask.build(model, options, tokenizer)  # this call's prompt, filters and method
    rate = model.config.features.sample_rate
    results = [Transcription(name, duration=w.numel() / rate) for name, w in zip(names or ["<audio>"] * len(waves), waves)]
    cut = vad_segments if vad else segment_bounds
    pieces = [(i, b) for i, wave in enumerate(waves) for b in cut(wave, rate, segment_seconds)]
    report = on_progress or (lambda done, total: None)
    report(0, len(pieces))
    for first in range(0, len(pieces), options.batch_size):
        batch = pieces[first : first + options.batch_size]
        segments = _decode_segments(task, tokenizer, [(waves[i], bounds) for i, bounds in batch], aligner)
        for (i, _), segment in zip(batch, segments):
            results[i].segments.append(segment)
        report(first + len(batch), len(pieces))
    for result in results:
        result.text = " ".join(s.text for s in result.segments if s.text)
    return results


@torch.inference_mode()
def _decode_segments(
    task: DecodingTask, tokenizer: Tokenizer, pieces: list[tuple[Tensor, tuple[int, int]]], aligner: str | None
) -> list[Segment]:
    """Decode segments (wave, (start, end) samples) as one batch -> one Segment each; with an
    ``aligner`` ("ctc", "cross-attention"), the best hypothesis gets word times."""
    model = task.model
    device = next(model.parameters()).device
    rate = model.config.features.sample_rate
    waves, lengths = pad([wave[start:end] for wave, (start, end) in pieces])
    encoded, enc_lengths = task.encode(waves.to(device), lengths.to(device))
    hyps = task.search(encoded, enc_lengths)
    segments = []
    for b, ((wave, (start, end)), nbest_list) in enumerate(zip(pieces, hyps)):
        best = nbest_list[0]
        segment = Segment(start / rate, end / rate, hypothesis_text(tokenizer, best.tokens))
        segment.nbest = [Candidate(hypothesis_text(tokenizer, h.tokens), h) for h in nbest_list[: task.options.nbest]]
        if aligner is not None:
            memory, length = encoded[b], int(enc_lengths[b])
            segment.words = word_times(
                model, tokenizer, aligner, memory, length, wave[start:end], best.tokens, start / rate, task.prompt
            )
            if segment.words:
                segment.confidence = sum(w.confidence for w in segment.words) / len(segment.words)
        segments.append(segment)
    return segments


def display_path(path: str | Path) -> str:
    """A file name as printable text: bytes that are not UTF-8 (kept by Python as surrogates)
    are shown as ``\\xNN`` escapes instead of failing when printed or written as JSON."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def check_segment_seconds(segment_seconds: float | None) -> None:
    """None (the longest training utterance) or a length in [MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS]."""
    if segment_seconds is None:
        return
    number = isinstance(segment_seconds, (int, float)) and not isinstance(segment_seconds, bool)
    if not (number and MIN_SEGMENT_SECONDS <= segment_seconds <= MAX_SEGMENT_SECONDS):
        raise ValueError(
            f"--segment-seconds must be from {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g} seconds, got "
            f"{segment_seconds!r} (segment_seconds: longer audio is cut into segments of at most this length; "
            "shorter ones would cut words in two)"
        )


def transcribe_files(
    exp_dir: str | Path,
    paths: list[str | Path],
    options: DecodeOptions,
    *,
    checkpoint: str | Path | None = None,
    segment_seconds: float | None = None,
    timestamps: bool = True,
    vad: bool = True,
    device: str | torch.device = "cpu",
    console: Console | None = None,
    align: str | None = None,
) -> list[Transcription]:
    """Transcribe each file; a missing, unreadable, non-finite, silent or too large one gets
    ``error`` set, the rest go on. ``segment_seconds`` None caps segments at the longest
    training utterance. ``options.language``: a multilingual Whisper model's language for this
    run (asr.text.language; None: the experiment's). ``align``: the word-time aligner (None:
    ctc where the model has a CTC head, else cross-attention)."""
    check_segment_seconds(segment_seconds)
    console = console or Console(stderr=True)
    model, tokenizer, config = load_for_inference(exp_dir, checkpoint, device)
    options = DecodingTask.build(model, options, tokenizer).options  # a bad language fails here, first
    if timestamps:
        check_aligner(align, model)  # before any file is read
    segment_seconds, warning = segment_limit(exp_dir, config, segment_seconds)
    if warning:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True, markup=True)
    rate = config.features.sample_rate
    # Segments are at most segment_seconds long: the largest batch is known before any work.
    check_decode_memory(config, model.vocab_size, options, options.batch_size, int(segment_seconds * rate), device)
    results = []
    with counting_progress(console, transient=True) as progress:
        task = progress.add_task("transcribing", total=len(paths))
        segments = progress.add_task("segments", total=None, visible=False)  # of the file being read
        for path in paths:
            try:  # a file that is there to be transcribed is expected to hold speech
                wave, _ = load_audio(path, rate, expect_speech=True)

                def show(done: int, total: int, name: str = display_path(path)) -> None:
                    progress.update(segments, description=f"  segments of {name}", completed=done, total=total, visible=total > 1)

                results += transcribe_waves(
                    model, tokenizer, [wave], options, segment_seconds=segment_seconds,
                    timestamps=timestamps, vad=vad, names=[display_path(path)], align=align, on_progress=show,
                )  # fmt: skip
            except (AudioError, MemoryBudgetError) as err:
                results.append(Transcription(display_path(path), error=display_path(str(err))))
            progress.update(segments, visible=False)
            progress.advance(task)
    return results
