"""Training batches read from tar shards (asr.data.shards): which shards each rank and each
DataLoader worker reads, their duration-bucketed batches, and the order the loader yields them.

An epoch's plan depends only on (seed, epoch, ranks, workers) and the shard index, so every rank
computes every rank's plan without talking to the others:

1. The shards are shuffled from (seed, epoch) and dealt round-robin: rank r gets shards r,
   r + R, r + 2R, ...; its worker w gets every W-th of those, from the w-th on.
2. A worker reads its shards front to back, ``window`` shards at a time (0: all of them), and
   batches each window's utterances as DurationBatchSampler batches a manifest: sorted by
   duration, bucket-shuffled, packed up to max_batch_seconds, batch order shuffled. The first
   window of rank 0's worker 0 is batched with the file path's own seed, so with one rank, one
   worker and one window the batches are exactly those of training from the manifest.
3. A rank's batches are its workers' taken in turn (worker 0's first, worker 1's first, ...),
   the order a DataLoader asks its workers in. Batches carry their number in the plan, and the
   main process puts them back in that order whatever order the workers finish in.
4. Ranks with fewer batches than the most split their fullest batches in two until every rank
   has as many (collective operations stay in step); nothing is dropped or repeated.

Resuming at batch n of an epoch needs the plan alone: each worker skips the windows it had
delivered in full without reading them.
"""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.audio import decode_audio
from asr.data.batching import DurationBatchSampler
from asr.data.dataset import Batch, SpeechDataset, collate
from asr.data.shards import Location, read_at


@dataclass(frozen=True)
class PlannedBatch:
    number: int  # position in its rank's plan for the epoch
    worker: int  # the DataLoader worker that reads and builds it
    window: int  # the window of shards it comes from (numbered per worker)
    members: tuple[int, ...]  # utterance indices


class ShardPlan:
    """Every rank's batches of an epoch (see the module docstring), cached for the last epoch."""

    def __init__(
        self, shard_of: list[int], durations: list[float], num_shards: int, max_batch_seconds: float, *,
        seed: int, world_size: int = 1, workers: int = 1, window: int = 1, bucket_size: int = 100,
    ):
        if num_shards < world_size:
            raise ValueError(
                f"{num_shards} shard(s) for {world_size} ranks: every rank needs at least one; "
                "write smaller shards (asr prepare shards --shard-seconds)"
            )
        self.shard_of, self.durations = shard_of, durations
        self.num_shards, self.max_batch_seconds = num_shards, max_batch_seconds
        self.seed, self.world_size, self.workers = seed, world_size, max(1, workers)
        self.window, self.bucket_size = window, bucket_size
        self._cached: tuple[int, list[list[PlannedBatch]]] | None = None

    def rank_batches(self, epoch: int, rank: int) -> list[PlannedBatch]:
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._build(epoch))
        return self._cached[1][rank]

    def _build(self, epoch: int) -> list[list[PlannedBatch]]:
        order = list(range(self.num_shards))
        random.Random(f"{self.seed}:{epoch}:shards").shuffle(order)  # SHA-512 of the text: same on every rank
        members: dict[int, list[int]] = {shard: [] for shard in order}
        for index, shard in enumerate(self.shard_of):
            members[shard].append(index)  # ascending: the manifest's order
        per_rank = [self._rank_lists(epoch, rank, order[rank :: self.world_size], members) for rank in range(self.world_size)]
        target = max(sum(map(len, lists)) for lists in per_rank)
        return [_interleave(_split_to(lists, target)) for lists in per_rank]

    def _rank_lists(self, epoch: int, rank: int, shards: list[int], members: dict[int, list[int]]) -> list[list[tuple[int, list[int]]]]:
        """Each worker's (window, utterance indices) batches, in the order it yields them."""
        lists = []
        for worker in range(self.workers):
            mine = shards[worker :: self.workers]
            size = self.window or max(1, len(mine))
            batches = []
            for window, start in enumerate(range(0, len(mine), size)):
                indices = sorted(i for shard in mine[start : start + size] for i in members[shard])
                first = rank == worker == window == 0  # the file path's own batches, see 2. above
                seed = self.seed if first else f"{self.seed}:{rank}:{worker}:{window}"
                batches += [(window, b) for b in self._window_batches(indices, epoch, seed)]
            lists.append(batches)
        return lists

    def _window_batches(self, indices: list[int], epoch: int, seed: int | str) -> list[list[int]]:
        sampler = DurationBatchSampler(
            [self.durations[i] for i in indices], self.max_batch_seconds, seed=seed, bucket_size=self.bucket_size
        )
        return [[indices[j] for j in batch] for batch in sampler.epoch_batches(epoch)]


def _split_to(lists: list[list[tuple[int, list[int]]]], target: int) -> list[list[tuple[int, list[int]]]]:
    """Split the fullest batches (each in two, in place) until there are ``target`` in all."""
    while sum(map(len, lists)) < target:
        worker, j = max(((w, j) for w, batches in enumerate(lists) for j in range(len(batches))),
                        key=lambda wj: len(lists[wj[0]][wj[1]][1]))  # fmt: skip
        window, batch = lists[worker][j]
        if len(batch) < 2:
            raise ValueError(f"cannot split the shards' batches into {target} per rank: too few utterances on a rank")
        half = len(batch) // 2
        lists[worker][j : j + 1] = [(window, batch[:half]), (window, batch[half:])]
    return lists


def _interleave(lists: list[list[tuple[int, list[int]]]]) -> list[PlannedBatch]:
    """Workers' batches taken in turn, as a DataLoader asks its workers; numbered."""
    plan: list[PlannedBatch] = []
    for row in itertools.zip_longest(*lists):
        for worker, entry in enumerate(row):
            if entry is not None:
                plan.append(PlannedBatch(len(plan), worker, entry[0], tuple(entry[1])))
    return plan


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's batches of one epoch, from batch ``start`` on, as (number, Batch) pairs; each
    DataLoader worker reads its own shards (``set_position`` before making the loader)."""

    def __init__(self, root: Path, files: tuple[str, ...], locations: list[Location], dataset: SpeechDataset,
                 plan: ShardPlan, rank: int):  # fmt: skip
        self.root, self.files, self.locations = root, files, locations
        self.dataset, self.plan, self.rank = dataset, plan, rank
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start
        self.dataset.set_epoch(epoch)  # speed perturbation factors

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        if info is not None and info.num_workers != self.plan.workers:
            raise ValueError(f"the plan is for {self.plan.workers} workers, the loader has {info.num_workers}")
        mine = [b for b in self.plan.rank_batches(self.epoch, self.rank)[self.start :] if b.worker == worker]
        for _, window in itertools.groupby(mine, key=lambda b: b.window):
            batches = list(window)
            data = self._read(sorted(i for b in batches for i in b.members))
            for batch in batches:
                yield batch.number, collate([self._item(i, data.pop(i)) for i in batch.members])

    def _read(self, indices: list[int]) -> dict[int, bytes]:
        """The members' bytes, each shard read once, front to back."""
        data: dict[int, bytes] = {}
        by_shard = sorted(indices, key=lambda i: (self.locations[i].shard, self.locations[i].offset))
        for shard, group in itertools.groupby(by_shard, key=lambda i: self.locations[i].shard):
            with open(self.root / self.files[shard], "rb") as f:
                for i in group:
                    data[i] = read_at(f, self.locations[i], self.files[shard])
        return data

    def _item(self, index: int, data: bytes) -> dict:
        utt = self.dataset.utterances[index]
        name = f"{self.files[self.locations[index].shard]}:{utt.id}"
        wave, _ = decode_audio(io.BytesIO(data), name, self.dataset.sample_rate, expect_speech=bool(utt.text))
        return self.dataset.item(index, wave)


def in_plan_order(numbered: Iterable[tuple[int, Batch]], start: int) -> Iterator[Batch]:
    """The batches of ``numbered`` in plan order from ``start`` (workers may finish out of turn)."""
    pending: dict[int, Batch] = {}
    expected = start
    for number, batch in numbered:
        pending[number] = batch
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    if pending:
        raise RuntimeError(f"shard batches {sorted(pending)} arrived but batch {expected} never did")
