"""Random streams under DDP: the data order is shared, augmentation and dropout are not.

Every rank builds the model from ``seed`` (identical initial weights) and reads the batches the
sampler deals it from ``seed`` too (asr.data.batching: one order, cut into rank shares). After
that, rank r seeds the global torch RNG with ``seed + r``: SpecAugment masks and dropout are
drawn on the fly from it, so with one seed every GPU would mask the same spans and drop the same
units of its batch. Checkpoints keep every rank's RNG state so that a resume restores each.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from asr.train.distributed import DistContext
from asr.train.state import restore_rng, rng_state


def seed_rank(seed: int, rank: int) -> None:
    """Seed the streams of augmentation and dropout of ``rank``."""
    torch.manual_seed(seed + rank)


def gather_rng_states(ctx: DistContext) -> list[dict]:
    """Every rank's RNG state, in rank order (a collective call: every rank must make it)."""
    state = rng_state()
    if not ctx.enabled:
        return [state]
    states: list = [None] * ctx.world_size
    dist.all_gather_object(states, state)
    return states


def restore_rank_rng(checkpoint: dict, ctx: DistContext, seed: int) -> None:
    """Restore this rank's RNG from a checkpoint; a rank the checkpoint has no state for (the
    run was resumed on more GPUs) is seeded from seed + rank + the update count instead."""
    states = checkpoint.get("rank_rng") or [checkpoint["rng"]]
    if ctx.rank < len(states):
        restore_rng(states[ctx.rank])
    else:
        seed_rank(seed + 1009 * checkpoint["position"]["step"], ctx.rank)
