"""The training schedule in optimizer updates: batch per update, updates per epoch, warmup share.

A config describes one update, whatever the hardware: ``train.gpus`` GPUs each take
``data.max_batch_seconds`` of audio per micro-batch and accumulate ``train.accum_steps`` of them,
so one update sees ``max_batch_seconds x accum_steps x gpus`` seconds of audio (as ESPnet's
``batch_bins`` x ``accum_grad`` is a total over GPUs). ``train.warmup_steps`` counts updates.

On another number of ranks the effective batch is kept: accumulation becomes
``ceil(accum_steps x gpus / ranks)`` and each micro-batch ``effective / (ranks x accumulation)``
seconds, which is never more than the config's (no rank needs more memory than planned).
With the same micro-batch budget, 1 rank accumulating 2 and 2 ranks accumulating 1 take the
same number of updates: the sampler deals equal shares to ranks (asr.data.batching).

:func:`plan` computes it all from the manifest's durations, before any model exists, so that
``asr train --dry-run`` shows a mis-set schedule before a GPU hour is spent.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from asr.config import ExperimentConfig
from asr.data.batching import DurationBatchSampler

WARMUP_WARN_FRACTION = 0.3  # warn when warmup takes more of the run than this


@dataclass(frozen=True)
class Schedule:
    ranks: int  # processes training together (GPUs)
    config_gpus: int  # the GPUs the config was written for
    accum_steps: int  # micro-batches per update on each rank, as run
    batch_seconds: float  # audio budget of one micro-batch on one rank, as run
    updates_per_epoch: int
    epochs: int
    total_updates: int  # epochs x updates per epoch, or train.max_steps if smaller
    warmup_steps: int
    epoch_seconds: float  # training audio in one epoch
    utterances: int

    @property
    def update_seconds(self) -> float:
        """The budget of one update: audio over all ranks and accumulated micro-batches."""
        return self.batch_seconds * self.accum_steps * self.ranks

    @property
    def mean_update_seconds(self) -> float:
        """The audio an update actually holds on average (batches are not filled to the brim)."""
        return self.epoch_seconds / max(1, self.updates_per_epoch)

    @property
    def warmup_fraction(self) -> float:
        return self.warmup_steps / max(1, self.total_updates)

    @property
    def adjusted(self) -> bool:
        return self.ranks != self.config_gpus

    def warnings(self) -> list[str]:
        if self.warmup_fraction <= WARMUP_WARN_FRACTION:
            return []
        peak = "the learning rate never reaches its peak" if self.warmup_fraction >= 1 else (
            f"the peak learning rate comes after {100 * self.warmup_fraction:.0f}% of the run"
        )
        return [
            f"warmup ({self.warmup_steps} updates) is more than {100 * WARMUP_WARN_FRACTION:.0f}% "
            f"of the run ({self.total_updates} updates): {peak}; lower train.warmup_steps, or "
            "raise train.epochs or the batch"
        ]

    def lines(self) -> list[str]:
        """What the trainer prints at start (and ``asr train --dry-run``)."""
        hours = self.epoch_seconds / 3600
        lines = [
            f"schedule: {self.utterances} utterances ({hours:.1f} h) per epoch, on {self.ranks} "
            f"GPU(s) x {self.accum_steps} accumulated micro-batch(es) of <= {self.batch_seconds:.0f} s",
            f"  audio per update: <= {self.update_seconds:.0f} s ({self.update_seconds / 60:.1f} min), "
            f"{self.mean_update_seconds:.0f} s on average",
            f"  updates: {self.updates_per_epoch} per epoch x {self.epochs} epochs = "
            f"{self.total_updates} total; warmup {self.warmup_steps} "
            f"({100 * self.warmup_fraction:.1f}% of the run)",
        ]
        if self.adjusted:
            lines.append(
                f"  the config is written for {self.config_gpus} GPU(s); on {self.ranks} the batch "
                f"per update is kept by accumulating {self.accum_steps} micro-batch(es) of "
                f"<= {self.batch_seconds:.0f} s"
            )
        return lines

    def record(self) -> dict:
        """For log.jsonl (the "schedule" of the "start" record)."""
        return {
            **asdict(self),
            "update_seconds": self.update_seconds,
            "mean_update_seconds": self.mean_update_seconds,
            "warmup_fraction": self.warmup_fraction,
        }


def per_rank_batch(config: ExperimentConfig, ranks: int) -> tuple[int, float]:
    """(accumulation steps, micro-batch seconds) on ``ranks`` ranks keeping the config's
    effective batch (see the module docstring)."""
    if ranks < 1:
        raise ValueError(f"the number of GPUs must be at least 1, got {ranks}")
    cfg = config.train
    if cfg.gpus < 1 or cfg.accum_steps < 1:
        raise ValueError(
            f"train.gpus ({cfg.gpus}) and train.accum_steps ({cfg.accum_steps}) must be at least 1"
        )
    micro_batches = cfg.accum_steps * cfg.gpus  # per update, in the config
    if micro_batches % ranks == 0:  # exact: the same micro-batch, accumulated more or less
        return micro_batches // ranks, config.data.max_batch_seconds
    accum = math.ceil(micro_batches / ranks)
    return accum, config.data.max_batch_seconds * micro_batches / (ranks * accum)


def per_rank_config(config: ExperimentConfig, ranks: int) -> ExperimentConfig:
    """``config`` with data.max_batch_seconds and train.accum_steps as run on ``ranks`` ranks."""
    accum, batch_seconds = per_rank_batch(config, ranks)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, max_batch_seconds=batch_seconds),
        train=dataclasses.replace(config.train, accum_steps=accum),
    )


def updates_per_epoch(
    durations: list[float], batch_seconds: float, accum_steps: int, ranks: int, *, seed: int,
    bucket_size: int, epoch: int = 0,
) -> int:
    """Optimizer updates in ``epoch``: each rank's batches, in groups of ``accum_steps`` (the
    epoch's last group updates even when short, as the training loop does)."""
    sampler = DurationBatchSampler(
        durations, batch_seconds, seed=seed, rank=0, world_size=ranks, bucket_size=bucket_size
    )
    per_rank = len(sampler.epoch_batches(epoch)) // ranks
    return math.ceil(per_rank / accum_steps)


def plan(config: ExperimentConfig, durations: list[float], ranks: int) -> Schedule:
    """The schedule of ``config`` on ``ranks`` ranks for training utterances of ``durations``
    (seconds, already filtered by data.max_duration). Counted on epoch 0; other epochs differ
    by at most a few batches (the buckets are cut at another offset)."""
    cfg = config.train
    accum, batch_seconds = per_rank_batch(config, ranks)
    per_epoch = updates_per_epoch(
        durations, batch_seconds, accum, ranks, seed=cfg.seed, bucket_size=config.data.bucket_size
    )
    total = per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return Schedule(
        ranks=ranks,
        config_gpus=cfg.gpus,
        accum_steps=accum,
        batch_seconds=batch_seconds,
        updates_per_epoch=per_epoch,
        epochs=cfg.epochs,
        total_updates=total,
        warmup_steps=cfg.warmup_steps,
        epoch_seconds=float(sum(durations)),
        utterances=len(durations),
    )


def training_durations(config: ExperimentConfig) -> list[float]:
    """Durations of the training utterances that training uses (data.max_duration applied)."""
    from asr.data.manifest import read_manifest
    from asr.train.data import training_manifest

    if not (config.data.train_manifest or config.data.train_shards):
        raise ValueError("data.train_manifest is not set: --set data.train_manifest=FILE.jsonl")
    manifest = training_manifest(config)
    utterances = read_manifest(manifest)
    durations = [u.duration for u in utterances if u.duration <= config.data.max_duration]
    if not durations:
        raise ValueError(
            f"{manifest}: no utterance is at most data.max_duration="
            f"{config.data.max_duration} s long"
        )
    return durations


def announce(schedule: Schedule, console) -> None:
    """Print the schedule, and its warnings in yellow (``console`` is a rich Console)."""
    for line in schedule.lines():
        console.print(line, highlight=False)
    for warning in schedule.warnings():
        console.print(f"[yellow]warning: {warning}[/yellow]")
