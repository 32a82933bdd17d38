"""The shard plan: every utterance once per epoch, equal batches per rank, each worker reading only
its own shards, and the file path's batches when there is one rank, one worker and one window."""

from __future__ import annotations

import random

import pytest

from asr.data.batching import DurationBatchSampler
from asr.data.shard_stream import ShardPlan, in_plan_order


def _corpus(utterances: int = 300, shards: int = 14, seed: int = 0) -> tuple[list[int], list[float]]:
    rng = random.Random(seed)
    shard_of = sorted(rng.randrange(shards) for _ in range(utterances))
    rng.shuffle(shard_of)
    return shard_of, [rng.uniform(0.5, 9.0) for _ in range(utterances)]


@pytest.mark.parametrize("world_size, workers, window", [(3, 2, 1), (2, 3, 2), (4, 1, 0)])
def test_every_utterance_once_per_epoch_and_equal_batches_per_rank(world_size, workers, window):
    shard_of, durations = _corpus()
    plan = ShardPlan(shard_of, durations, 14, 20.0, seed=7, world_size=world_size, workers=workers, window=window, bucket_size=10)
    for epoch in (0, 1):
        ranks = [plan.rank_batches(epoch, rank) for rank in range(world_size)]
        assert len({len(batches) for batches in ranks}) == 1
        seen = sorted(i for batches in ranks for b in batches for i in b.members)
        assert seen == list(range(len(durations)))
        for rank, batches in enumerate(ranks):
            assert [b.number for b in batches] == list(range(len(batches)))
            for b in batches:
                assert len(b.members) == 1 or sum(durations[i] for i in b.members) <= 20.0
            shards_of_worker = {}
            for b in batches:
                for i in b.members:
                    assert shards_of_worker.setdefault(shard_of[i], b.worker) == b.worker  # a shard has one reader
            # a worker's windows come one after the other: never back to an earlier one
            for worker in range(workers):
                windows = [b.window for b in batches if b.worker == worker]
                assert windows == sorted(windows)
    assert plan.rank_batches(0, 0) != ShardPlan(shard_of, durations, 14, 20.0, seed=7, world_size=world_size,
                                                workers=workers, window=window, bucket_size=10).rank_batches(1, 0)


def test_workers_take_turns_in_the_loaders_order():
    shard_of, durations = _corpus()
    batches = ShardPlan(shard_of, durations, 14, 20.0, seed=1, workers=3).rank_batches(0, 0)
    counts = [sum(b.worker == w for b in batches) for w in range(3)]
    shortest = min(counts)
    assert [b.worker for b in batches[: 3 * shortest]] == [0, 1, 2] * shortest


def test_one_rank_one_worker_one_window_gives_the_file_paths_batches():
    shard_of, durations = _corpus()
    plan = ShardPlan(shard_of, durations, 14, 20.0, seed=1234, window=0, bucket_size=10)
    sampler = DurationBatchSampler(durations, 20.0, seed=1234, bucket_size=10)
    for epoch in (0, 3):
        assert [list(b.members) for b in plan.rank_batches(epoch, 0)] == sampler.epoch_batches(epoch)


def test_fewer_shards_than_ranks_is_an_error_that_says_what_to_do():
    shard_of, durations = _corpus(shards=2)
    with pytest.raises(ValueError, match="2 shard.*3 ranks.*--shard-seconds"):
        ShardPlan(shard_of, durations, 2, 20.0, seed=0, world_size=3)


def test_batches_are_put_back_in_plan_order():
    arrivals = [(3, "d"), (2, "c"), (5, "f"), (4, "e")]
    assert list(in_plan_order(arrivals, 2)) == ["c", "d", "e", "f"]
    with pytest.raises(RuntimeError, match="batch 2 never"):
        list(in_plan_order([(3, "d")], 2))
