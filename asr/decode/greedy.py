"""Greedy attention decoding: every utterance of a batch takes its decoder's argmax token at each
step, all advancing together through one cached decoder call; an utterance leaves the batch when
it emits <eos> or reaches its length limit."""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.end_rules import max_token_lengths
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import Scorer, Selection
from asr.text.tokenizer import SOS_EOS_ID


def attention_greedy(
    scorer: Scorer, memory: Tensor, memory_lengths: Tensor, options: DecodeOptions
) -> list[list[Hypothesis]]:
    """memory (N, T, D) encoder output, memory_lengths (N,) >= 1 -> one hypothesis per utterance.

    ``attention`` is the sum of the decoder log-probs of the tokens and <eos> (at the length limit
    <eos> is forced, and its log-prob still counts, as in beam search); ``score`` is that, ranked
    (length normalisation or bonus) as beam search ranks its finished hypotheses.
    """
    ranker = Ranker.from_options(options)
    n = memory.shape[0]
    limits = max_token_lengths(memory_lengths, options.max_length_ratio)  # (N,)
    state = scorer.init(memory, memory_lengths, group=1)
    active = torch.arange(n, device=memory.device)  # original index of each row still decoding
    tokens: list[list[int]] = [[] for _ in range(n)]
    results: list[Hypothesis | None] = [None] * n

    for step in range(int(limits.max()) + 1):
        scored = scorer.score(state, None)  # (n', V) totals
        best = scored.tokens.argmax(dim=-1)
        best = torch.where(step >= limits[active], torch.full_like(best, SOS_EOS_ID), best)
        scores = scored.tokens.gather(1, best[:, None]).squeeze(1)
        ended = best == SOS_EOS_ID
        for row, (utt, token, end) in enumerate(zip(active.tolist(), best.tolist(), ended.tolist())):
            if end:
                score = float(scores[row])
                ranked = ranker.rank(score, len(tokens[utt]) + 1)
                results[utt] = Hypothesis(tokens[utt], ranked, {"decoder": score})
            else:
                tokens[utt].append(token)
        rows = torch.arange(best.shape[0], device=best.device)
        state = scorer.select(scored.state, Selection(rows, best, best, in_place=True))
        keep = (~ended).nonzero().squeeze(1)
        if keep.numel() == 0:
            break
        if keep.numel() < active.numel():
            state = scorer.select_utterances(state, keep)
            active = active[keep]
    return [[hyp] for hyp in results]  # type: ignore[list-item]  (every utterance ends by its limit)
