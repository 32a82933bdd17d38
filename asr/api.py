"""The Python API: load a trained experiment once, then transcribe audio from files or memory::

    import asr
    recognizer = asr.load("exp/100h")               # or exp/100h/checkpoints/step-00012000.pt
    result = recognizer.transcribe("talk.flac", nbest=3)
    result.text, result.confidence, result.words[0], result.nbest[1].score

(The README's example of the same runs as a doctest in the test suite.)

Options are those of ``asr transcribe``, with the same defaults (:data:`DEFAULTS`): the fields
of :class:`asr.decode.options.DecodeOptions` (the one decode config; ``language`` is a
multilingual Whisper model's language for that call, :attr:`Recognizer.languages` lists the
codes) plus ``segment_seconds``, ``timestamps`` and ``vad``. Results are
:class:`asr.transcribe.Transcription` objects. Each call assembles its own decoding task
(asr.decode.task): one Recognizer serves threads with different options and languages at once.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor

from asr.audio import load_audio
from asr.decode.align import FrameClock, Word, align_tokens, snap_to_speech, words_from_spans
from asr.decode.options import DecodeOptions
from asr.experiment import CHECKPOINTS, load_for_inference
from asr.transcribe import Transcription, segment_limit, transcribe_waves
from asr.vad import speech_frames
from asr.text.language import model_languages, prompt_language

Audio = Union[str, Path, np.ndarray, Tensor]

# `asr decode`'s own options: an LM folder and the WER report's normalisation.
_DECODE_ONLY = ("lm", "normalizer")
# The transcription pipeline's options, with `asr transcribe`'s defaults.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "segment_seconds": None,  # None: the longest training utterance of the experiment
    "timestamps": True,
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
        """Imported Whisper models have no CTC head until fine-tuned: no word times then."""
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
        pipeline["segment_seconds"], warning = segment_limit(self.exp_dir, self.config, pipeline["segment_seconds"])
        if warning:
            warnings.warn(warning, stacklevel=2)
        waves = [self.load_wave(audio, sample_rate) for audio in audios]
        names = [_name(audio) for audio in audios]
        return transcribe_waves(self.model, self.tokenizer, waves, decode, names=names, **pipeline)

    @torch.inference_mode()
    def align(self, audio: Audio, text: str, sample_rate: int | None = None) -> list[Word]:
        """Word times of a known transcript ``text`` in ``audio`` (CTC forced alignment).
        Empty when the text has more tokens than the audio has encoder frames."""
        if not self.has_ctc:
            raise OptionError(f"{self.exp_dir}: the model has no CTC head (fine-tune it with one) to align text with")
        wave = self.load_wave(audio, sample_rate).to(self.device)
        tokens = self.tokenizer.encode(text)
        encoded, lengths = self.model.encode(wave[None], torch.tensor([wave.numel()], device=self.device))
        log_probs = self.model.ctc_log_probs(encoded)[0, : int(lengths[0])]  # (T', V)
        spans = align_tokens(log_probs, tokens)
        pieces = self.tokenizer.pieces(tokens) if spans else []
        words = words_from_spans(spans, pieces, self.tokenizer.decode, FrameClock.of(self.model))
        return snap_to_speech(words, speech_frames(wave.cpu(), self.sample_rate))

    def load_wave(self, audio: Audio, sample_rate: int | None) -> Tensor:
        """Any accepted audio -> (S,) float32 at the model's rate, on the CPU."""
        if isinstance(audio, (str, Path)):
            return load_audio(audio, self.sample_rate)[0]
        return to_mono(audio, sample_rate or self.sample_rate, self.sample_rate)


def to_mono(audio: np.ndarray | Tensor, rate: int, target_rate: int) -> Tensor:
    """(S,), (C, S) or (S, C) audio -> (S,) float32 at ``target_rate``; channels are averaged,
    the shorter axis being the channels."""
    import torchaudio.functional as AF

    wave = torch.as_tensor(np.asarray(audio) if isinstance(audio, np.ndarray) else audio).detach().cpu().float()
    if wave.dim() == 2:
        wave = wave.mean(dim=0 if wave.shape[0] <= wave.shape[1] else 1)
    if wave.dim() != 1:
        raise AudioShapeError(f"audio must be (samples,) or (channels, samples), got shape {tuple(wave.shape)}")
    if rate != target_rate and wave.numel() > 0:
        wave = AF.resample(wave, rate, target_rate)
    return wave


class AudioShapeError(ValueError):
    """An in-memory audio array of a shape that is not one recording."""


def _name(audio: Audio) -> str:
    if isinstance(audio, (str, Path)):
        return str(audio)
    return "<tensor>" if isinstance(audio, Tensor) else "<array>"


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
