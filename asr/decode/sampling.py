"""Sampled decoding at a temperature, best of several (openai-whisper's decoding at T > 0).

Each utterance draws ``best_of`` samples: at every step each sample's next token is drawn from
softmax(logits / T) (after the logit filters), until <eos> or the length limit; the samples are
ranked as openai-whisper's ``MaximumLikelihoodRanker`` without a length penalty ranks them, by
the sum of their (untempered) log-probs over their length. Scores are the untempered decoder
log-probs, as in greedy search, so the safeguards of asr.decode.fallback judge a sample as
they judge a greedy result.

Sampling is reproducible and independent of batching: every utterance draws from a generator
of its own, seeded with ``seed`` (Gumbel-max: argmax of log-probs / T + Gumbel noise), so it
samples the same alone as in any batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.decode.end_rules import max_token_lengths
from asr.decode.hypothesis import Hypothesis
from asr.decode.options import DecodeOptions
from asr.decode.ranking import Ranker
from asr.decode.scorers import DecoderScorer, Selection
from asr.text.special import SOS_EOS_ID

TINY = 1e-20  # keeps the uniform draws of the Gumbel noise inside (0, 1)


def _gumbel(generators: list[torch.Generator], rows: int, vocab: int, device: torch.device) -> Tensor:
    """(n * rows, V) Gumbel noise, each utterance's ``rows`` from its own generator."""
    draws = [torch.rand((rows, vocab), generator=g, device=device) for g in generators]
    return -torch.log(-torch.log(torch.cat(draws).clamp(TINY, 1.0 - 1e-7)))


def sample_search(
    scorer: DecoderScorer, memory: Tensor, memory_lengths: Tensor, options: DecodeOptions,
    temperature: float, best_of: int, seed: int = 0,
) -> list[list[Hypothesis]]:  # fmt: skip
    """memory (N, T, D), memory_lengths (N,) >= 1 -> per utterance its ``best_of`` samples at
    ``temperature`` (> 0), best first (see the module docstring)."""
    n, group = memory.shape[0], best_of
    limits = max_token_lengths(memory_lengths, options.max_length_ratio)  # (N,)
    state = scorer.init(memory, memory_lengths, group)
    generators = [torch.Generator(device=memory.device).manual_seed(seed) for _ in range(n)]
    active = list(range(n))  # utterances still sampling, in row order
    tokens: list[list[int]] = [[] for _ in range(n * group)]
    ended: list[float | None] = [None] * (n * group)  # decoder score of each finished sample
    for step in range(int(limits.max()) + 1):
        scored = scorer.score(state, None)  # (H, V) totals
        log_probs = scored.tokens - state.total[:, None]  # this step's (filtered) log-probs
        noise = _gumbel([generators[u] for u in active], group, log_probs.shape[1], log_probs.device)
        drawn = (log_probs / temperature + noise).argmax(dim=-1)  # (H,)
        rows = [u * group + g for u in active for g in range(group)]
        at_limit = torch.tensor([step >= int(limits[u]) for u in active], device=drawn.device).repeat_interleave(group)
        done_before = torch.tensor([ended[r] is not None for r in rows], device=drawn.device)
        drawn = torch.where(at_limit | done_before, torch.full_like(drawn, SOS_EOS_ID), drawn)
        totals = scored.tokens.gather(1, drawn[:, None]).squeeze(1).tolist()
        for row, token, total, done in zip(rows, drawn.tolist(), totals, done_before.tolist()):
            if done:
                continue
            if token == SOS_EOS_ID:
                ended[row] = total
            else:
                tokens[row].append(token)
        state = scorer.select(scored.state, Selection(torch.arange(len(rows), device=drawn.device), drawn, drawn, in_place=True))
        keep = [i for i, u in enumerate(active) if any(ended[u * group + g] is None for g in range(group))]
        if not keep:
            break
        if len(keep) < len(active):
            state = scorer.select_utterances(state, torch.tensor(keep, device=memory.device))
            active = [active[i] for i in keep]
    return [_ranked(tokens[u * group : (u + 1) * group], ended[u * group : (u + 1) * group], options) for u in range(n)]


def _ranked(tokens: list[list[int]], scores: list[float | None], options: DecodeOptions) -> list[Hypothesis]:
    """One utterance's samples, best first by log-prob per token (openai-whisper's ranking)."""
    ranker = Ranker.from_options(options)
    hyps = [Hypothesis(t, ranker.rank(s, len(t) + 1), {"decoder": s}) for t, s in zip(tokens, scores) if s is not None]
    return sorted(hyps, key=lambda h: -h.scores["decoder"] / max(1, len(h.tokens)))
