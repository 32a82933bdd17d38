"""Training batches: the manifest's utterances, the dataset, the duration-bucketed sampler of this
rank, and the grouping of an epoch's batches into updates (gradient accumulation)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from rich.console import Console

from asr.config import ExperimentConfig
from asr.data.batching import DurationBatchSampler
from asr.data.dataset import Batch, SpeechDataset, collate
from asr.data.manifest import Utterance, read_manifest
from asr.data.screen import usable_utterances
from asr.noise import Corruptor, NoiseSourceError
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
    kept = [u for u in utterances if u.duration <= config.data.max_duration]
    if ctx.is_main and len(kept) < len(utterances):
        console.print(
            f"[yellow]left out {len(utterances) - len(kept)} training utterances longer than "
            f"data.max_duration={config.data.max_duration}s[/yellow]"
        )
    if not kept:
        raise TrainingError(f"{config.data.train_manifest}: no training utterances")
    return kept


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


def corruptor(config: ExperimentConfig, utterances: list[Utterance]) -> Corruptor:
    """The training set's reverberation and noise (augment.noise_*, augment.reverb_*); babble is
    drawn from these utterances."""
    try:
        return Corruptor(config.augment, config.features.sample_rate, [u.audio for u in utterances])
    except NoiseSourceError as err:
        raise TrainingError(str(err)) from None


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
            corrupt=corruptor(config, utterances),
        )
        self.sampler = DurationBatchSampler(
            [u.duration for u in utterances],
            config.data.max_batch_seconds,
            seed=config.train.seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            bucket_size=config.data.bucket_size,
        )

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
