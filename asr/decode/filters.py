"""Logit filters: decode-time rules on the decoder's next-token logits (openai-whisper's
``LogitFilter``), applied by the decoder scorer after every step, before the log-softmax.

    apply(logits, step, history) -> logits    logits (H, V) of H hypotheses choosing their
                                              token at ``step`` (0: the first after the prompt);
                                              history (H, step): their tokens so far, given to
                                              the filters that set ``needs_history``

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
    needs_history: bool

    def apply(self, logits: Tensor, step: int, history: Tensor | None = None) -> Tensor: ...


@dataclass(frozen=True)
class SuppressTokens:
    """Tokens never emitted (Whisper: non-speech symbols, task tokens), or with ``first_only``
    not as the first token (Whisper: " " and <|endoftext|>, so a transcript is not empty)."""

    tokens: tuple[int, ...]
    first_only: bool = False
    needs_history = False

    def apply(self, logits: Tensor, step: int, history: Tensor | None = None) -> Tensor:
        if self.first_only and step != 0:
            return logits
        return logits.index_fill(1, logits.new_tensor(self.tokens, dtype=torch.long), float("-inf"))


@dataclass(frozen=True)
class ForceEnd:
    """Only <eos> from ``step`` on: the decoder's learned position table (Whisper: 448 rows,
    prompt included) has no row for another token."""

    step: int
    needs_history = False

    def apply(self, logits: Tensor, step: int, history: Tensor | None = None) -> Tensor:
        if step < self.step:
            return logits
        eos = logits[:, SOS_EOS_ID].clone()
        logits = torch.full_like(logits, float("-inf"))
        logits[:, SOS_EOS_ID] = eos
        return logits


@dataclass(frozen=True)
class NoRepeatNgram:
    """No n-gram of ``n`` tokens twice in a hypothesis: a token that would complete an n-gram
    the hypothesis already holds is banned (the ``no_repeat_ngram_size`` of fairseq and
    transformers). A guard against the loops an attention decoder falls into on noise; it also
    forbids true repeats as long as ``n``, so n must be longer than any repeat the speech has."""

    n: int
    needs_history = True

    def apply(self, logits: Tensor, step: int, history: Tensor | None = None) -> Tensor:
        if history is None or history.shape[1] < self.n:
            return logits
        grams = history.unfold(1, self.n, 1)  # (H, W, n): every n-gram so far
        last = history[:, history.shape[1] - self.n + 1 :]  # (H, n-1): what the next token extends
        seen = (grams[:, :, :-1] == last[:, None, :]).all(dim=-1)  # (H, W)
        banned = torch.zeros_like(logits).scatter_add_(1, grams[:, :, -1], seen.to(logits.dtype))
        return logits.masked_fill(banned > 0, float("-inf"))


def model_filters(decoder: DecoderConfig, prompt_length: int, no_repeat_ngram: int = 0) -> tuple[LogitFilter, ...]:
    """The filters of a decode, in the order they apply: the model config's suppressed tokens,
    first step's suppressed tokens and forced end of a learned position table (the prompt's
    first ``prompt_length`` - 1 tokens take positions of it too), then the n-gram guard."""
    filters: list[LogitFilter] = []
    if decoder.suppress:
        filters.append(SuppressTokens(tuple(decoder.suppress)))
    if decoder.suppress_at_start:
        filters.append(SuppressTokens(tuple(decoder.suppress_at_start), first_only=True))
    if decoder.max_positions:
        filters.append(ForceEnd(decoder.max_positions - max(prompt_length, 1)))
    if no_repeat_ngram:
        filters.append(NoRepeatNgram(no_repeat_ngram))
    return tuple(filters)


def apply_filters(
    filters: tuple[LogitFilter, ...], logits: Tensor, step: int, history: Tensor | None = None
) -> Tensor:
    for rule in filters:
        logits = rule.apply(logits, step, history)
    return logits
