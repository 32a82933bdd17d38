"""When a search stops growing an utterance's hypotheses.

Shared by greedy and beam search:
  * a length limit relative to the encoder output, so that a decoder that never emits <eos>
    (a known failure of attention models on noisy or long input) cannot run away; when reached,
    <eos> is the only allowed next token;
  * an utterance is done once no alive hypothesis can beat its best finished one (exact, given
    the beam), or once it has ``beam`` finished hypotheses (whisper's rule; it is what stops a
    length-normalised search early, since its bound above is loose).
"""

from __future__ import annotations

import torch
from torch import Tensor


def max_token_lengths(memory_lengths: Tensor, ratio: float) -> Tensor:
    """Most tokens (without <eos>) per utterance: max(1, floor(ratio * encoder frames)), (N,) long."""
    return (memory_lengths.double() * ratio).floor().long().clamp(min=1)


def utterances_done(
    best_finished: Tensor, alive_bound: Tensor, finished_count: Tensor, beam: int
) -> Tensor:
    """Which utterances to stop.

    best_finished (N,): ranking score of each utterance's best finished hypothesis (-inf: none);
    alive_bound (N, G): upper bound on what each alive hypothesis can still reach (-inf: dead);
    finished_count (N,): finished hypotheses so far. Returns (N,) bool: True where nothing is
    alive, nothing alive can do better, or ``beam`` hypotheses have finished.
    """
    nothing_alive = torch.isneginf(alive_bound).all(dim=-1)
    unbeatable = best_finished >= alive_bound.max(dim=-1).values
    return nothing_alive | unbeatable | (finished_count >= beam)
