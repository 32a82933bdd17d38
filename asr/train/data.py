"""Training batches: the manifest's utterances, the dataset, the duration-bucketed sampler of this
rank, and the grouping of an epoch's batches into updates (gradient accumulation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from rich.console import Console

from asr import files
from asr.config import ExperimentConfig
from asr.data.batching import DurationBatchSampler
from asr.data.dataset import Batch, SpeechDataset, collate
from asr.data.manifest import Utterance, read_manifest
from asr.data.screen import usable_utterances
from asr.data.shard_stream import ShardPlan, ShardStream, in_plan_order
from asr.data.shards import UTTERANCES, read_shards
from asr.text.tokenizer import Tokenizer
from asr.train.distributed import DistContext
from asr.train.errors import TrainingError
from asr.train.state import Position


def training_utterances(
    config: ExperimentConfig, console: Console, ctx: DistContext, rejected: Path | None = None
) -> list[Utterance]:
    """The training manifest's utterances, without unusable audio when ``rejected`` names where
    to list it (asr.data.screen), and without those longer than data.max_duration."""
    if rejected is None:
        utterances = read_manifest(config.data.train_manifest)
    else:
        show = console if ctx.is_main else None
        utterances = usable_utterances(config.data.train_manifest, rejected, config.data.num_workers, show)
    kept = within_max_duration(utterances, config, console, ctx)
    return [utterances[i] for i in kept]


def within_max_duration(utterances: Sequence[Utterance], config: ExperimentConfig, console: Console, ctx: DistContext) -> list[int]:
    """Indices of the utterances at most data.max_duration long (the others are announced)."""
    kept = [i for i, u in enumerate(utterances) if u.duration <= config.data.max_duration]
    if ctx.is_main and len(kept) < len(utterances):
        console.print(
            f"[yellow]left out {len(utterances) - len(kept)} training utterances longer than "
            f"data.max_duration={config.data.max_duration}s[/yellow]"
        )
    if not kept:
        raise TrainingError(f"{training_source(config)}: no training utterances")
    return kept


def training_source(config: ExperimentConfig) -> str:
    """What training reads: data.train_shards or data.train_manifest (never both)."""
    if config.data.train_shards and config.data.train_manifest:
        raise TrainingError("set data.train_manifest or data.train_shards, not both (a shard folder holds its manifest)")
    return config.data.train_shards or config.data.train_manifest


def training_manifest(config: ExperimentConfig) -> Path:
    """The manifest of the training utterances: data.train_manifest, or the shard folder's
    utterances.jsonl (already screened; its ``audio`` fields name the original files)."""
    source = training_source(config)
    return Path(source) / UTTERANCES if config.data.train_shards else Path(source)


def group_updates(batches: Iterable[Batch], accum_steps: int) -> Iterator[list[Batch]]:
    """Consecutive groups of ``accum_steps`` batches; the last group of an epoch may be shorter:
    gradients never cross an epoch boundary (a checkpoint there holds none)."""
    group: list[Batch] = []
    for batch in batches:
        group.append(batch)
        if len(group) == accum_steps:
            yield group
            group = []
    if group:
        yield group


class TrainData:
    """This rank's training batches, epoch by epoch, from (seed, epoch) alone: ``updates`` yields
    the rest of an epoch as the micro-batch groups of successive updates, so a resumed run gets
    the very batches the interrupted one would have had. (Where a schedule changes the number of
    micro-batches per update, ``updates`` is the one place to change.)"""

    def __init__(
        self, config: ExperimentConfig, tokenizer: Tokenizer, ctx: DistContext, console: Console,
        rejected: Path | None = None,
    ):
        self.config = config
        self.device = ctx.device
        utterances = training_utterances(config, console, ctx, rejected)
        self.dataset = SpeechDataset(
            utterances,
            tokenizer,
            config.features.sample_rate,
            speeds=config.augment.speeds if config.augment.speed_perturb else None,
            seed=config.train.seed,
        )
        self.sampler = DurationBatchSampler(
            [u.duration for u in utterances],
            config.data.max_batch_seconds,
            seed=config.train.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            bucket_size=config.data.bucket_size,
        )

    @property
    def durations(self) -> list[float]:
        return self.sampler.durations

    def rank_batch_count(self, epoch: int, world_size: int, batch_seconds: float) -> int:
        """Batches per rank in ``epoch`` on ``world_size`` ranks of ``batch_seconds`` batches."""
        sampler = DurationBatchSampler(self.durations, batch_seconds, seed=self.config.train.seed,
                                       world_size=world_size, bucket_size=self.config.data.bucket_size)  # fmt: skip
        return len(sampler.epoch_batches(epoch)) // world_size

    def epoch_batches(self, epoch: int) -> int:
        """This rank's number of batches in ``epoch``."""
        self.sampler.set_epoch(epoch)
        return len(self.sampler)

    def batches(self, position: Position) -> Iterator[Batch]:
        """This rank's batches of ``position.epoch``, from batch ``position.batch_in_epoch`` on."""
        self.sampler.set_epoch(position.epoch)
        self.sampler.skip(position.batch_in_epoch)
        self.dataset.set_epoch(position.epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            # Own generator: creating the loader must not consume the global RNG, whose state
            # (dropout, SpecAugment) a resumed run restores from the checkpoint.
            generator=torch.Generator().manual_seed(self.config.train.seed + position.epoch),
        )
        return iter(loader)

    def updates(self, position: Position, accum_steps: int) -> Iterator[list[Batch]]:
        """The rest of the epoch as the micro-batch groups of successive updates."""
        return group_updates(self.batches(position), accum_steps)


class ShardTrainData:
    """``TrainData`` for data.train_shards: this rank's batches read shard by shard by the
    DataLoader workers (asr.data.shard_stream), from (seed, epoch) alone as well. The audio was
    screened when the shards were written; their rejection list is copied to ``rejected``."""

    def __init__(
        self, config: ExperimentConfig, tokenizer: Tokenizer, ctx: DistContext, console: Console,
        rejected: Path | None = None,
    ):
        self.config, self.device, self.rank = config, ctx.device, ctx.rank
        index = read_shards(config.data.train_shards)
        if rejected is not None and ctx.is_main and index.rejected.is_file():
            files.copy_file(index.rejected, rejected)
        kept = within_max_duration(index.utterances, config, console, ctx)
        utterances = [index.utterances[i] for i in kept]
        locations = [index.locations[i] for i in kept]
        dataset = SpeechDataset(
            utterances, tokenizer, config.features.sample_rate,
            speeds=config.augment.speeds if config.augment.speed_perturb else None, seed=config.train.seed,
        )  # fmt: skip
        self.plan = ShardPlan(
            [loc.shard for loc in locations], [u.duration for u in utterances], len(index.files),
            config.data.max_batch_seconds, seed=config.train.seed, world_size=ctx.world_size,
            workers=config.data.num_workers, window=config.data.shard_window, bucket_size=config.data.bucket_size,
        )  # fmt: skip
        self.stream = ShardStream(index.root, index.files, locations, dataset, self.plan, ctx.rank)

    @property
    def durations(self) -> list[float]:
        return self.plan.durations

    def epoch_batches(self, epoch: int) -> int:
        return len(self.plan.rank_batches(epoch, self.rank))

    def rank_batch_count(self, epoch: int, world_size: int, batch_seconds: float) -> int:
        plan = self.plan
        other = ShardPlan(plan.shard_of, plan.durations, plan.num_shards, batch_seconds, seed=plan.seed,
                          world_size=world_size, workers=plan.workers, window=plan.window, bucket_size=plan.bucket_size)  # fmt: skip
        return len(other.rank_batches(epoch, 0))

    def batches(self, position: Position) -> Iterator[Batch]:
        self.stream.set_position(position.epoch, position.batch_in_epoch)
        loader = torch.utils.data.DataLoader(
            self.stream, batch_size=None, num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.config.train.seed + position.epoch),  # as TrainData
        )  # fmt: skip
        return in_plan_order(loader, position.batch_in_epoch)

    def updates(self, position: Position, accum_steps: int) -> Iterator[list[Batch]]:
        return group_updates(self.batches(position), accum_steps)


def train_data(
    config: ExperimentConfig, tokenizer: Tokenizer, ctx: DistContext, console: Console, rejected: Path | None = None
) -> TrainData | ShardTrainData:
    """The training batches of data.train_shards, or else of data.train_manifest."""
    training_source(config)  # one of them, not both
    cls = ShardTrainData if config.data.train_shards else TrainData
    return cls(config, tokenizer, ctx, console, rejected)
