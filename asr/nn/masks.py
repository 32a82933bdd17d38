"""Padding masks and the rows of grouped hypotheses: small helpers every stage shares.

Batches are padded to their longest item; ``lengths_to_mask`` says which positions are real.
Beam search keeps G hypotheses per utterance in utterance-major rows (hypothesis g of utterance
n is row n*G + g); ``utterance_rows`` lists the rows of some utterances.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG_INF = float("-inf")  # log of probability 0: what masked scores are filled with


def lengths_to_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on the first ``lengths[b]`` positions of row b.

    T is ``max_length``, or the longest length when not given (a host sync)."""
    if max_length is None:
        max_length = int(lengths.max()) if lengths.numel() else 0
    return torch.arange(max_length, device=lengths.device) < lengths[:, None]


def utterance_rows(utterances: Tensor, group: int) -> Tensor:
    """Rows (n*G,) of the G hypotheses of each of the utterances (n,), utterance-major."""
    return (utterances[:, None] * group + torch.arange(group, device=utterances.device)).reshape(-1)
