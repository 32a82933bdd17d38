"""One entry point for every search: waveforms -> encoder -> the method the options name.

Thin functions over :class:`asr.decode.task.DecodingTask`, for callers that decode once with a
model's own prompt (its experiment's language): the plain searches. A decode in another
language, or with Whisper's safeguards (asr.decode.fallback), builds the task with the
tokenizer (``DecodingTask.build(model, options, tokenizer)``), as `asr decode`, `asr
transcribe` and the API do.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.beam import Weighted
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.task import LM, DecodingTask
from asr.model import ASRModel


@torch.inference_mode()
def decode_batch(
    model: ASRModel, waves: Tensor, wave_lengths: Tensor, options: DecodeOptions, lm: LM | None = None
) -> list[list[Hypothesis]]:
    """waves (B, S) zero-padded, wave_lengths (B,) samples -> per utterance, hypotheses best first.

    The model should be in eval mode (dropout and SpecAugment off)."""
    return DecodingTask.build(model, options, lm=lm).decode(waves, wave_lengths)


@torch.inference_mode()
def encode(model: ASRModel, waves: Tensor, wave_lengths: Tensor, precision: str = "fp32") -> tuple[Tensor, Tensor]:
    """waves (B, S), wave_lengths (B,) -> encoder output (B, T, D) in fp32, lengths (B,)
    (see DecodingTask.encode)."""
    return DecodingTask.build(model, DecodeOptions(precision=precision)).encode(waves, wave_lengths)  # type: ignore[arg-type]


@torch.inference_mode()
def search_encoded(
    model: ASRModel, encoded: Tensor, enc_lengths: Tensor, options: DecodeOptions, lm: LM | None = None
) -> list[list[Hypothesis]]:
    """encoded (B, T, D), enc_lengths (B,) -> per utterance, hypotheses best first.

    An utterance too short to leave any encoder frame decodes to an empty hypothesis.
    """
    return DecodingTask.build(model, options, lm=lm).search(encoded, enc_lengths)


def beam_scorers(model: ASRModel, options: DecodeOptions, lengths: Tensor, lm: LM | None = None) -> Weighted:
    """The weighted scorers of a beam search over encoder outputs of ``lengths`` (N,) (see
    DecodingTask.scorers)."""
    return DecodingTask.build(model, options, lm=lm).scorers(lengths)
