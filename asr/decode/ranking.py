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

    def rank(self, score: float, length: int) -> float:
        """Ranking score of a finished hypothesis; ``length`` counts its tokens plus <eos>."""
        if self.length_norm:
            return score / length**self.alpha
        return score + self.bonus * length

    def best_possible(self, score: Tensor, length: int, max_length: Tensor) -> Tensor:
        """Upper bound on the ranking score of any completion of alive hypotheses.

        score (H,): raw scores of prefixes of ``length`` tokens; max_length (H,): the most tokens
        each may reach. Valid because every search score (decoder log-prob, CTC prefix
        log-prob) can only decrease as a prefix grows; the final length lies in
        [length + 1, max_length + 1] counting <eos>.
        """
        shortest = torch.full_like(score, length + 1.0)
        longest = max_length.to(score.dtype) + 1.0
        if self.length_norm:
            # score <= 0, and score / L**alpha grows with L; take both ends to be safe with either sign.
            return torch.maximum(score / shortest**self.alpha, score / longest**self.alpha)
        return score + self.bonus * (longest if self.bonus > 0 else shortest)
