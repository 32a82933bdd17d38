"""Dynamic batching by total audio duration, with per-epoch shuffling and rank sharding."""

from __future__ import annotations

import random
from typing import Iterator

from torch.utils.data import Sampler


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices whose durations add up to at most ``max_batch_seconds``.

    Each epoch's batches are built the same way on every rank, from ``(seed, epoch)`` alone:

    1. Sort the utterances by duration (ties broken randomly).
    2. Cut the sorted list into buckets of ``bucket_size`` utterances, the first cut at a random
       offset, and shuffle within each bucket: neighbours in a batch have similar lengths (little
       padding) but batches differ from epoch to epoch.
    3. Fill batches greedily in that order. An utterance longer than the budget on its own forms
       a batch by itself (warning about it, or filtering it out, is the caller's job).
    4. While the number of batches is not a multiple of ``world_size``, split the batch with the
       most utterances in two. Every rank then gets the same number of batches (so collective
       operations stay in step) and every utterance is used exactly once per epoch across ranks;
       nothing is dropped or repeated. Splitting only shrinks batches, so the budget still holds.
    5. Shuffle the batch order, and give rank r batches r, r + world_size, r + 2 * world_size, ...

    With ``shuffle=False`` (validation) nothing is random: steps 2 and 5 are skipped, and batches
    go from the shortest utterances to the longest.

    Speed perturbation changes durations after batching: with factors down to 0.9 a batch can
    hold up to 1/0.9 of the budget.

    A str ``seed`` names a stream of its own (asr.data.shard_stream batches each window of
    shards with one).

    Resuming mid-epoch: ``set_epoch(e)`` then ``skip(n)`` makes iteration start at this rank's
    batch ``n`` of epoch ``e``; ``len()`` is the number of batches iteration will yield.
    """

    def __init__(
        self,
        durations: list[float],
        max_batch_seconds: float,
        *,
        seed: int | str,
        rank: int = 0,
        world_size: int = 1,
        bucket_size: int = 100,
        shuffle: bool = True,
    ):
        if max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be positive, got {max_batch_seconds}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be at least 1, got {bucket_size}")
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.bucket_size = bucket_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches iteration yields; also clears any ``skip``."""
        self.epoch = epoch
        self.start_batch = 0

    def skip(self, num_batches: int) -> None:
        """Start this epoch's iteration at this rank's batch ``num_batches`` (to resume)."""
        if num_batches < 0:
            raise ValueError(f"cannot skip {num_batches} batches")
        self.start_batch = num_batches

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every rank's batches for ``epoch``, in the order they are dealt out to ranks."""
        if self._cached is None or self._cached[0] != epoch:
            self._cached = (epoch, self._build(epoch))
        return self._cached[1]

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch, from the start of the epoch."""
        return self.epoch_batches(self.epoch)[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches()[self.start_batch :]

    def __len__(self) -> int:
        return max(0, len(self.rank_batches()) - self.start_batch)

    def _build(self, epoch: int) -> list[list[int]]:
        # A string seed is hashed with SHA-512 by `random`: identical on every rank and every run.
        rng = random.Random(f"{self.seed}:{epoch}")
        order = list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)  # sort below is stable: equal durations end up in random order
        order.sort(key=self.durations.__getitem__)
        if self.shuffle:
            order = self._shuffle_buckets(order, rng)
        batches = self._pack(order)
        batches = self._split_to_multiple(batches)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def _shuffle_buckets(self, order: list[int], rng: random.Random) -> list[int]:
        first_cut = rng.randrange(self.bucket_size)
        cuts = [0, *range(first_cut, len(order), self.bucket_size), len(order)]
        shuffled: list[int] = []
        for start, end in zip(cuts, cuts[1:]):
            bucket = order[start:end]
            rng.shuffle(bucket)
            shuffled += bucket
        return shuffled

    def _pack(self, order: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        batch: list[int] = []
        total = 0.0
        for index in order:
            duration = self.durations[index]
            if batch and total + duration > self.max_batch_seconds:
                batches.append(batch)
                batch, total = [], 0.0
            batch.append(index)
            total += duration
        if batch:
            batches.append(batch)
        return batches

    def _split_to_multiple(self, batches: list[list[int]]) -> list[list[int]]:
        while len(batches) % self.world_size:
            largest = max(range(len(batches)), key=lambda i: len(batches[i]))
            batch = batches[largest]
            if len(batch) < 2:
                raise ValueError(
                    f"cannot deal {len(self.durations)} utterances into an equal number of "
                    f"batches for {self.world_size} ranks"
                )
            half = len(batch) // 2
            batches[largest : largest + 1] = [batch[:half], batch[half:]]
        return batches
