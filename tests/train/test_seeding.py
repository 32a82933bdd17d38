"""DDP seeding: ranks share the data order but not the augmentation or dropout draws."""

from __future__ import annotations

import torch

from asr.augment import SpecAugment
from asr.config import AugmentConfig
from asr.data.batching import DurationBatchSampler
from asr.train.seeding import seed_rank

AUGMENT = SpecAugment(AugmentConfig(time_masks=5, time_mask_ratio=0.05)).train()


def _draws(seed: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    seed_rank(seed, rank)
    feats = torch.ones(4, 300, 80)
    masks = AUGMENT(feats, torch.full((4,), 300)) == 0
    dropped = torch.nn.functional.dropout(torch.ones(1000), 0.1, training=True) == 0
    return masks, dropped


def test_each_rank_draws_its_own_masks_and_dropout_reproducibly():
    rank0, rank1 = _draws(1234, 0), _draws(1234, 1)
    assert not torch.equal(rank0[0], rank1[0]) and not torch.equal(rank0[1], rank1[1])
    again = _draws(1234, 1)
    assert torch.equal(again[0], rank1[0]) and torch.equal(again[1], rank1[1])


def test_data_order_does_not_depend_on_the_rank_seed():
    durations = [float(1 + i % 7) for i in range(200)]
    batches = []
    for rank in (0, 1):
        seed_rank(1234, rank)
        sampler = DurationBatchSampler(durations, 20.0, seed=1234, rank=rank, world_size=2)
        batches.append(sampler.epoch_batches(0))
    assert batches[0] == batches[1]  # one order for everyone, dealt out in rank shares
