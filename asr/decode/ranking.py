"""Ranking finished hypotheses by length-corrected score, and the bound that ends a beam search.

Log-probabilities only fall as a hypothesis grows, so raw scores favour short outputs. Two usual
corrections: divide by length**alpha (Wu et al., 2016, "Google's neural machine translation
system", section 7, without the +5 offset), or add a bonus per token (the "length penalty" of
ESPnet's decoding configs). Both are applied when finished hypotheses are ranked, not while the
beam is pruned (as in whisper's ``MaximumLikelihoodRanker``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from asr.decode.options import DecodeOptions


@dataclass(frozen=True)
class Ranker:
    length_norm: bool = False
    alpha: float = 1.0
    bonus: float = 0.0

    @classmethod
    def from_options(cls, options: DecodeOptions) -> Ranker:
        return cls(options.length_norm, options.length_alpha, options.length_bonus)

    def rank(self, score: Tensor, length: int) -> Tensor:
        """Ranking score of finished hypotheses (a tensor or a float) that all have ``length``
        tokens plus <eos>."""
        if self.length_norm:
            return score / length**self.alpha
        return score + self.bonus * length

    def best_possible(self, score: Tensor, length: int, max_length: Tensor, token_bound: float = 0.0) -> Tensor:
        """Upper bound on the ranking score of any completion of alive hypotheses.

        score (H,): raw scores of prefixes of ``length`` tokens; max_length (H,): the most tokens
        each may reach; ``token_bound``: the most one more token (or <eos>) can add to a raw
        score, 0 for log-probabilities (the decoder's, the CTC prefix score), which can only
        fall as a prefix grows. The final length lies in [length + 1, max_length + 1] counting
        <eos>, and the raw score there is at most score + token_bound * (final - length).
        """
        shortest = torch.full_like(score, length + 1.0)
        longest = max_length.to(score.dtype) + 1.0
        if self.length_norm:
            # Bound the numerator, then take both ends: score / L**alpha is monotone in L.
            top = score + max(token_bound, 0.0) * (longest - length)
            return torch.maximum(top / shortest**self.alpha, top / longest**self.alpha)
        # score + token_bound * (L - length) + bonus * L is linear in L: one end is the maximum.
        at_shortest = score + token_bound + self.bonus * shortest
        at_longest = score + token_bound * (longest - length) + self.bonus * longest
        return torch.maximum(at_shortest, at_longest)
