"""The Python API: load a trained experiment once, then transcribe audio from files or memory::

    import asr
    recognizer = asr.load("exp/100h")               # or exp/100h/checkpoints/step-00012000.pt
    result = recognizer.transcribe("talk.flac", nbest=3)
    result.text, result.confidence, result.words[0], result.nbest[1].score

(The README's example of the same runs as a doctest in the test suite.)

Options are those of ``asr transcribe``, with the same defaults (:data:`DEFAULTS`): the fields
of :class:`asr.decode.options.DecodeOptions` (the one decode config; ``language`` is a
multilingual Whisper model's language for that call, :attr:`Recognizer.languages` lists the
codes) plus ``segment_seconds``, ``timestamps``, ``align`` ("ctc" or "cross-attention": which
alignment gives the word times) and ``vad``. Results are :class:`asr.transcribe.Transcription`
objects. Each call assembles its own decoding task (asr.decode.task): one Recognizer serves
threads with different options and languages at once.
"""

from __future__ import annotations

import dataclasses

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from asr.api_input import Audio, AudioInputError, AudioShapeError, audio_name, to_mono, wave_of  # noqa: F401 (re-exported)
from asr.decode.align import Word
from asr.decode.options import DecodeOptions
from asr.decode.streaming import RecognitionStream, StreamError, StreamOptions
from asr.decode.word_times import check_aligner, word_times
from asr.experiment import CHECKPOINTS, load_for_inference
from asr.text.language import model_languages, prompt_language
from asr.transcribe import Transcription, check_segment_seconds, segment_limit, transcribe_waves

# `asr decode`'s own options: an LM folder and the WER report's normalisation.
_DECODE_ONLY = ("lm", "normalizer")
# The transcription pipeline's options, with `asr transcribe`'s defaults.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "segment_seconds": None,  # None: the longest training utterance of the experiment
    "timestamps": True,
    "align": None,  # None: ctc where the model has a CTC head, else cross-attention
    "vad": True,
}
# Every option and its default: DecodeOptions()'s own, then the pipeline's (tests check the CLI's).
DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in dataclasses.asdict(DecodeOptions()).items() if k not in _DECODE_ONLY},
    **PIPELINE_DEFAULTS,
}


class OptionError(ValueError):
    """An option name the API does not know."""


def decode_options(has_ctc: bool = True, **options: Any) -> tuple[DecodeOptions, dict[str, Any]]:
    """CLI-style options -> (DecodeOptions, the pipeline options); unknown names are an error.
    ``has_ctc``: whether the model has a CTC head (it decides the default method, as in the CLI)."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise OptionError(f"unknown option {unknown[0]!r}; valid options: {', '.join(DEFAULTS)}")
    merged = {**DEFAULTS, **options}
    pipeline = {name: merged.pop(name) for name in PIPELINE_DEFAULTS}
    return DecodeOptions(**merged).for_model(has_ctc), pipeline


class Recognizer:
    """A model, its tokenizer and config, on one device, ready to transcribe."""

    def __init__(self, exp_dir: str | Path, checkpoint: str | Path | None = None, device: str | torch.device = "cpu"):
        self.exp_dir = Path(exp_dir)
        self.device = torch.device(device)
        self.model, self.tokenizer, self.config = load_for_inference(self.exp_dir, checkpoint, self.device)

    @property
    def has_ctc(self) -> bool:
        """Imported Whisper models have no CTC head until fine-tuned (their word times come
        from cross-attention then)."""
        return getattr(self.model, "ctc", None) is not None

    @property
    def sample_rate(self) -> int:
        return self.config.features.sample_rate

    @property
    def languages(self) -> list[str]:
        """The codes the ``language`` option takes: a multilingual Whisper model's languages,
        ["en"] for an English-only one, none for a SentencePiece model."""
        return model_languages(self.tokenizer)

    @property
    def language(self) -> str | None:
        """The language decoded when none is asked for (chosen at import), or None."""
        return prompt_language(self.tokenizer, self.config.model.decoder.prompt)

    def transcribe(self, audio: Audio, sample_rate: int | None = None, **options: Any) -> Transcription:
        """One recording: a file path, or a (samples,) / (channels, samples) array or tensor at
        ``sample_rate`` (default: the model's). See the module docstring for ``options``."""
        return self.decode_batch([audio], sample_rate, **options)[0]

    def decode_batch(self, audios: list[Audio], sample_rate: int | None = None, **options: Any) -> list[Transcription]:
        """Several recordings at once: their segments share decoding batches (``batch_size``)."""
        decode, pipeline = decode_options(self.has_ctc, **options)
        check_segment_seconds(pipeline["segment_seconds"])
        pipeline["segment_seconds"], warning = segment_limit(self.exp_dir, self.config, pipeline["segment_seconds"])
        if warning:
            warnings.warn(warning, stacklevel=2)
        waves = [self.load_wave(audio, sample_rate) for audio in audios]
        names = [audio_name(audio) for audio in audios]
        return transcribe_waves(self.model, self.tokenizer, waves, decode, names=names, **pipeline)

    @torch.inference_mode()
    def align(self, audio: Audio, text: str, sample_rate: int | None = None, align: str | None = None) -> list[Word]:
        """Word times of a known transcript ``text`` in ``audio``, by ``align`` ("ctc" or
        "cross-attention"; None: ctc where the model has a CTC head). Empty when the text has
        more tokens than the audio has encoder frames (ctc)."""
        aligner = check_aligner(align, self.model)
        wave = self.load_wave(audio, sample_rate).to(self.device)
        tokens = self.tokenizer.encode(text)
        encoded, lengths = self.model.encode(wave[None], torch.tensor([wave.numel()], device=self.device))
        return word_times(self.model, self.tokenizer, aligner, encoded[0], int(lengths[0]), wave, tokens)

    def stream(self, **options: Any) -> RecognitionStream:
        """A live stream: ``accept(samples)`` (float samples at ``sample_rate``, any number at a
        time) returns the partial text, ``finish()`` the final segments with word times.
        Options are :class:`asr.decode.streaming.StreamOptions`' (chunk_ms, left_chunks, beam,
        ctc_weight, rescore, endpoint_ms)."""
        valid = [f.name for f in dataclasses.fields(StreamOptions)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise OptionError(f"unknown streaming option {unknown[0]!r}; valid options: {', '.join(valid)}")
        try:
            return RecognitionStream(self.model, self.tokenizer, StreamOptions(**options))
        except StreamError as error:
            raise OptionError(f"{self.exp_dir}: {error}") from None

    def load_wave(self, audio: Audio, sample_rate: int | None) -> Tensor:
        """Any accepted audio -> (S,) float32 at the model's rate, on the CPU; what cannot be
        transcribed is an AudioInputError or AudioContentError (asr.api_input)."""
        return wave_of(audio, sample_rate, self.sample_rate)


def load(path: str | Path, device: str | torch.device = "cpu", checkpoint: str | Path | None = None) -> Recognizer:
    """An experiment directory (decoded with averaged.pt, else last.pt, as the CLI does), or a
    checkpoint file inside one (``exp/checkpoints/step-00001000.pt``)."""
    path = Path(path)
    if path.is_file():
        exp_dir = path.parent.parent if path.parent.name == CHECKPOINTS else path.parent
        return Recognizer(exp_dir, path, device)
    if not path.exists():
        raise FileNotFoundError(f"no experiment or checkpoint at {path}")
    return Recognizer(path, checkpoint, device)
