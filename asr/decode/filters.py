"""Logit filters: decode-time rules on the decoder's next-token logits (openai-whisper's
``LogitFilter``), applied by the decoder scorer after every step, before the log-softmax.

    apply(logits, step) -> logits      logits (H, V) of H hypotheses choosing their token at
                                       ``step`` (0: the first token after the prompt)

The filters of a decode come from the model's config (imported Whisper models record theirs
at import: asr.whisper.dims.decoding_rules) and are assembled per call by the decoding task
(asr.decode.task); a native model has none. They keep no state, so one filter serves
concurrent decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from asr.config import DecoderConfig
from asr.text.special import SOS_EOS_ID


class LogitFilter(Protocol):
    def apply(self, logits: Tensor, step: int) -> Tensor: ...


@dataclass(frozen=True)
class SuppressTokens:
    """Tokens never emitted (Whisper: non-speech symbols, task tokens), or with ``first_only``
    not as the first token (Whisper: " " and <|endoftext|>, so a transcript is not empty)."""

    tokens: tuple[int, ...]
    first_only: bool = False

    def apply(self, logits: Tensor, step: int) -> Tensor:
        if self.first_only and step != 0:
            return logits
        return logits.index_fill(1, logits.new_tensor(self.tokens, dtype=torch.long), float("-inf"))


@dataclass(frozen=True)
class ForceEnd:
    """Only <eos> from ``step`` on: the decoder's learned position table (Whisper: 448 rows,
    prompt included) has no row for another token."""

    step: int

    def apply(self, logits: Tensor, step: int) -> Tensor:
        if step < self.step:
            return logits
        eos = logits[:, SOS_EOS_ID].clone()
        logits = torch.full_like(logits, float("-inf"))
        logits[:, SOS_EOS_ID] = eos
        return logits


def model_filters(decoder: DecoderConfig, prompt_length: int) -> tuple[LogitFilter, ...]:
    """The filters a model's config asks for, in the order they apply: suppressed tokens, the
    first step's suppressed tokens, and the forced end of a learned position table (the
    prompt's first ``prompt_length`` - 1 tokens take positions of it too)."""
    filters: list[LogitFilter] = []
    if decoder.suppress:
        filters.append(SuppressTokens(tuple(decoder.suppress)))
    if decoder.suppress_at_start:
        filters.append(SuppressTokens(tuple(decoder.suppress_at_start), first_only=True))
    if decoder.max_positions:
        filters.append(ForceEnd(decoder.max_positions - max(prompt_length, 1)))
    return tuple(filters)


def apply_filters(filters: tuple[LogitFilter, ...], logits: Tensor, step: int) -> Tensor:
    for rule in filters:
        logits = rule.apply(logits, step)
    return logits
