"""The decoder as a beam-search scorer, and how scorers' outputs are weighted together.

A scorer has four operations (the ESPnet scorer interface, made explicit and batched):

    init(...)                       -> state for N utterances with G hypotheses each
    score(state, ...)               -> scores of the next token, and the grown state
    select(state, rows)             -> state of the hypotheses kept (reordered/duplicated rows)
    select_utterances(state, keep)  -> state without the utterances that finished

:class:`DecoderScorer` scores the whole vocabulary ("full scorer");
:class:`asr.decode.ctc_prefix.CTCPrefixScorer` scores chosen candidates only ("partial scorer").
Any object with :class:`TokenScorer`'s methods can stand in for the decoder, e.g. the
full-recomputation reference in tests/decode/test_beam.py.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

from asr.nn.decoder import Decoder, DecoderCache
from asr.text.tokenizer import BLANK_ID

NEG_INF = float("-inf")


class TokenScorer(Protocol):
    """A full scorer: log-probabilities of every next token of every hypothesis."""

    def init(self, memory: Tensor, memory_lengths: Tensor, group: int) -> Any: ...

    def score(self, state: Any, last_tokens: Tensor) -> tuple[Tensor, Any]: ...

    def select(self, state: Any, rows: Tensor) -> Any: ...

    def select_utterances(self, state: Any, keep: Tensor) -> Any: ...


class DecoderScorer:
    """Incremental decoder scoring with an explicit :class:`DecoderCache`.

    The cache holds the encoder keys/values once per utterance (projected in ``init``) and the
    self-attention keys/values of each hypothesis; ``select`` touches only the latter.
    """

    def __init__(self, decoder: Decoder, blank: int = BLANK_ID):
        self.decoder = decoder
        self.blank = blank

    def init(self, memory: Tensor, memory_lengths: Tensor, group: int) -> DecoderCache:
        """memory (N, T, D), memory_lengths (N,) -> a cache with G empty hypotheses per utterance."""
        cache = self.decoder.init_cache(memory, memory_lengths)
        return self.decoder.expand_cache(cache, group) if group > 1 else cache

    def score(self, state: DecoderCache, last_tokens: Tensor) -> tuple[Tensor, DecoderCache]:
        """Feed each hypothesis's latest token (N*G,) (<sos> first) -> next-token log-probs
        (N*G, V) float32 and the grown cache."""
        logits, cache = self.decoder.step(last_tokens, state)
        return next_token_log_probs(logits, self.blank), cache

    def select(self, state: DecoderCache, rows: Tensor) -> DecoderCache:
        return state.select_hypotheses(rows)

    def select_utterances(self, state: DecoderCache, keep: Tensor) -> DecoderCache:
        return state.select_utterances(keep)


def next_token_log_probs(logits: Tensor, blank: int = BLANK_ID) -> Tensor:
    """Decoder logits (..., V) -> log-probs in float32, blank set to -inf.

    The decoder is never trained to emit the CTC blank (it is only padding in its targets), so a
    search must not pick it; the other tokens keep their normalised log-probs.
    """
    log_probs = logits.float().log_softmax(dim=-1)
    log_probs[..., blank] = NEG_INF
    return log_probs


def combine(attention: Tensor, ctc: Tensor | None, ctc_weight: float) -> Tensor:
    """Joint score (1 - w) * attention + w * ctc (Watanabe et al., 2017, eq. 19).

    A weight of 0 drops its term entirely, so -inf in an unused scorer never turns into NaN.
    """
    if ctc is None or ctc_weight == 0.0:
        return attention
    if ctc_weight == 1.0:
        return ctc
    return (1.0 - ctc_weight) * attention + ctc_weight * ctc
