"""The scorer protocol of beam search, the decoder as a scorer, and weighted combination.

A scorer (ESPnet's scorer interface, made explicit and batched) gives every hypothesis's next
tokens a score. Beam search combines several by weight; it knows nothing else about them:

    init(memory, memory_lengths, group)  -> state for N utterances with G hypotheses each
    score(state, candidates)             -> Scores: of each hypothesis extended by each
                                            candidate token (or by every token when candidates
                                            is None), of each hypothesis ended by <eos> (the
                                            final score), and what ``select`` needs
    select(scored_state, selection)      -> state of the hypotheses kept: rows reordered or
                                            duplicated, each extended by its chosen token
    select_utterances(state, keep)       -> state without the utterances that finished

Scores are of whole prefixes (a running total), not per-token increments, so a score that is
not a sum over tokens (the CTC prefix probability) fits as it is. Two constants describe a
scorer to the search: ``partial`` (True: scoring a token is costly, so give it only the
pre-beam's candidates) and ``max_token_score`` (the most one token or <eos> can add to a
prefix's score: 0 for log-probabilities; the search's "cannot be beaten" end rule needs it).

:class:`DecoderScorer` scores the whole vocabulary; :class:`asr.decode.ctc_prefix.CTCPrefixScorer`
scores candidates only. Adding a scorer (a language model, say) is one more class with these
methods, and one more entry in the ``{name: (scorer, weight)}`` mapping given to beam search.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from asr.decode.filters import LogitFilter, apply_filters
from asr.nn.decoder import Decoder, DecoderCache
from asr.nn.masks import NEG_INF, utterance_rows
from asr.text.tokenizer import BLANK_ID, SOS_EOS_ID


@dataclass
class Scores:
    """What a scorer says about H hypotheses' extensions."""

    tokens: Tensor  # (H, K) score of each prefix + candidate token, or (H, V) for every token
    eos: Tensor  # (H,) score of each prefix + <eos>
    state: Any  # passed back to ``select``


@dataclass
class Selection:
    """The hypotheses kept after a step: row ``rows[i]`` extended by ``tokens[i]``, which was
    column ``cols[i]`` of the candidates (H, K) that were scored (all V tokens: cols = tokens)."""

    rows: Tensor  # (H',) long
    cols: Tensor  # (H',) long
    tokens: Tensor  # (H',) long
    in_place: bool = False  # rows is 0..H-1: every hypothesis stays in its row (greedy search)


class Scorer(Protocol):
    partial: bool
    max_token_score: float

    def init(self, memory: Tensor, memory_lengths: Tensor, group: int) -> Any: ...

    def score(self, state: Any, candidates: Tensor | None) -> Scores: ...

    def select(self, scored_state: Any, selection: Selection) -> Any: ...

    def select_utterances(self, state: Any, keep: Tensor) -> Any: ...


@dataclass
class DecoderState:
    cache: DecoderCache
    last: Tensor  # (N*G,) latest token of each hypothesis; <sos> (or the prompt's last) before the first
    total: Tensor  # (N*G,) decoder log-prob of each hypothesis's tokens
    step: int = 0  # tokens chosen so far (hypotheses grow in lockstep): what the logit filters see
    history: Tensor | None = None  # (N*G, step) the tokens so far, kept for filters that need them


class DecoderScorer:
    """Incremental decoder scoring with an explicit :class:`DecoderCache`.

    The cache holds the encoder keys/values once per utterance (projected in ``init``) and the
    self-attention keys/values of each hypothesis; ``select`` touches only the latter. A
    ``prompt`` (Whisper's <|startoftranscript|> ... <|notimestamps|>) is fed first, its last
    token in place of <sos>; the ``filters`` (asr.decode.filters) rule the logits of each step.
    Both are this scorer's, per decode: the decoder itself is never changed. With a
    ``no_speech`` token, ``init`` also sets :attr:`no_speech_probs`: per utterance, that
    token's probability after the prompt's first token (openai-whisper's no-speech probability,
    from the logits at <|startoftranscript|>, before any filter).
    """

    partial = False
    max_token_score = 0.0

    def __init__(
        self, decoder: Decoder, blank: int = BLANK_ID, eos: int = SOS_EOS_ID, capacity: int = 16,
        prompt: tuple[int, ...] = (), filters: tuple[LogitFilter, ...] = (), no_speech: int | None = None,
    ):  # fmt: skip
        self.decoder = decoder
        self.blank = blank
        self.eos = eos
        self.capacity = capacity  # steps the self-attention cache holds before it must grow
        self.prompt = tuple(prompt)
        self.filters = tuple(filters)
        self.no_speech = no_speech if len(self.prompt) > 1 else None  # needs the output after prompt[0]
        self.no_speech_probs: list[float] | None = None
        self.keeps_history = any(f.needs_history for f in self.filters)

    def init(self, memory: Tensor, memory_lengths: Tensor, group: int) -> DecoderState:
        """memory (N, T, D), memory_lengths (N,) -> G empty hypotheses per utterance."""
        cache = self.decoder.init_cache(memory, memory_lengths, group, self.capacity)
        hyps = memory.shape[0] * group
        for i, token in enumerate(self.prompt[:-1]):  # the prompt before <sos> (Whisper: at most 3 tokens)
            x, cache = self.decoder.feed(memory.new_full((hyps,), token, dtype=torch.long), cache)
            if i == 0 and self.no_speech is not None:
                probs = self.decoder.output(self.decoder.norm(x[::group])).float().softmax(dim=-1)  # (N, V)
                self.no_speech_probs = probs[:, self.no_speech].tolist()
        start = self.prompt[-1] if self.prompt else self.eos
        last = torch.full((hyps,), start, dtype=torch.long, device=memory.device)
        history = last.new_zeros((hyps, 0)) if self.keeps_history else None
        return DecoderState(cache, last, memory.new_zeros(hyps, dtype=torch.float32), history=history)

    def score(self, state: DecoderState, candidates: Tensor | None) -> Scores:
        """Feed each hypothesis's latest token -> log-prob totals (H, V) (or (H, K) of the
        candidates) in float32, and the totals with <eos>."""
        logits, cache = self.decoder.step(state.last, state.cache)
        logits = apply_filters(self.filters, logits, state.step, state.history)
        totals = state.total[:, None] + next_token_log_probs(logits, self.blank)  # (H, V)
        tokens = totals if candidates is None else totals.gather(1, candidates)
        return Scores(tokens, totals[:, self.eos], (cache, totals, state.step, state.history))

    def select(self, scored_state: tuple, selection: Selection) -> DecoderState:
        cache, totals, step, history = scored_state
        total = totals[selection.rows, selection.tokens]
        if not selection.in_place:  # (in place, copying the self-attention cache is not needed)
            cache = cache.select_hypotheses(selection.rows)
        if history is not None:
            history = torch.cat([history.index_select(0, selection.rows), selection.tokens[:, None]], dim=1)
        return DecoderState(cache, selection.tokens, total, step + 1, history)

    def select_utterances(self, state: DecoderState, keep: Tensor) -> DecoderState:
        cache = state.cache.select_utterances(keep)
        rows = utterance_rows(keep, cache.group)
        history = state.history[rows] if state.history is not None else None
        return DecoderState(cache, state.last[rows], state.total[rows], state.step, history)


def next_token_log_probs(logits: Tensor, blank: int = BLANK_ID) -> Tensor:
    """Decoder logits (..., V) -> log-probs in float32, blank set to -inf.

    The decoder is never trained to emit the CTC blank (it is only padding in its targets), so a
    search must not pick it; the other tokens keep their normalised log-probs.
    """
    log_probs = logits.float().log_softmax(dim=-1)
    log_probs[..., blank] = NEG_INF
    return log_probs


def combine(parts: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """Joint score: sum of weight * part over the parts of positive weight (Watanabe et al.,
    2017, eq. 19, with weights 1 - w and w for the decoder and CTC).

    A part of weight 0 is left out entirely, so -inf in an unused scorer never turns into NaN.
    """
    used = [(name, weights[name]) for name in parts if weights[name] > 0.0]
    if not used:
        raise ValueError(f"no scorer has a positive weight: {dict(weights)}")
    joint = None
    for name, weight in used:
        term = parts[name] if weight == 1.0 else weight * parts[name]
        joint = term if joint is None else joint + term
    return joint
