"""`asr train`: set up an experiment, then run the loop, on one CPU, one GPU, or many under torchrun.

The parts: ``TrainState`` (asr.train.state) is everything carried between updates;
``train_step`` (asr.train.step) is one update; ``TrainHooks`` (asr.train.hooks) log, validate and
checkpoint; ``TrainData`` (asr.train.data) yields the micro-batch groups of each epoch. ``run``
below is the loop that ties them together. Resuming from ``last.pt`` is exact (see state.py).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from asr import experiment as layout
from asr import files
from asr.checkpoint import check_tokenizer, directory_hash, load_checkpoint
from asr.cmvn import compute_cmvn_stats, load_cmvn, save_cmvn
from asr.config import ExperimentConfig, save_config, to_dict
from asr.data.screen import usable_utterances
from asr.data.shards import read_shards
from asr.durations import DURATIONS, write_training_durations
from asr.faults import kill_point
from asr.features import GlobalCMVN
from asr.model import ASRModel
from asr.finetune import freeze_encoder, load_init_weights
from asr.text.tokenizer import Tokenizer, load_tokenizer
from asr.train.data import ShardTrainData, TrainData, train_data, training_manifest
from asr.train.distributed import DistContext, barrier, cleanup, setup_distributed
from asr.train.errors import TrainingError
from asr.train.hooks import TrainHooks
from asr.train.lock import experiment_lock
from asr.train.log import ExperimentLog
from asr.precision import resolve_precision
from asr.train.schedule import announce, per_rank_batch, per_rank_config, plan
from asr.train.seeding import restore_rank_rng, seed_rank
from asr.train.state import Position, TrainState, build_train_state
from asr.train.step import train_step

__all__ = ["Session", "TrainSummary", "TrainingError", "prepare", "run", "train"]


@dataclass
class TrainSummary:
    steps: int
    epochs_done: int
    skipped_nonfinite: int
    last_train_loss: float
    best_dev: dict | None  # best.json entry of the best validation, if any ran
    model: ASRModel  # the trained model (unwrapped from DDP), for callers in Python


def run(state: TrainState, data: TrainData, hooks: TrainHooks) -> float:
    """Train until ``epochs`` or ``max_steps``; returns the last update's mean loss."""
    cfg = state.config
    max_steps = cfg.max_steps or math.inf
    last_loss = float("nan")
    with hooks.progress:
        while state.position.epoch < cfg.epochs and state.step < max_steps:
            epoch_batches = data.epoch_batches(state.position.epoch)
            hooks.start_epoch(state, epoch_batches)
            for batches in data.updates(state.position, cfg.accum_steps):
                result = train_step(state, batches)
                last_loss = last_loss if result.skipped else result.mean_loss
                kill_point("step")
                hooks.after_update(state, result, max_steps)
                _stop_if_diverged(state, hooks)
                if state.step >= max_steps:
                    break
            if state.position.batch_in_epoch >= epoch_batches:  # the epoch ran to its end
                state.position.epoch += 1
                state.position.batch_in_epoch = 0
                hooks.after_epoch(state)
        hooks.at_end(state)
    return last_loss


def _stop_if_diverged(state: TrainState, hooks: TrainHooks) -> None:
    in_a_row = state.position.nonfinite_in_a_row
    if in_a_row >= state.config.max_nonfinite:
        hooks.save_last(state)
        raise TrainingError(
            f"{in_a_row} non-finite losses in a row at step {state.step}: "
            "training diverged; lower train.lr, raise train.warmup_steps or use fp32"
        )


def train(
    config: ExperimentConfig,
    exp_dir: str | Path,
    *,
    device: str | None = None,
    console: Console | None = None,
) -> TrainSummary:
    """Train (or resume training) the experiment in ``exp_dir``. Only one process at a time may
    train in an experiment (under torchrun, rank 0 holds the lock for all)."""
    console = console or Console()
    exp_dir = Path(exp_dir)
    ctx = setup_distributed(device, config.train.dist_timeout, config.train.dist_wait_timeout)
    try:
        if not ctx.is_main:
            return _train(config, exp_dir, ctx, console)
        with experiment_lock(exp_dir / layout.LOCK, console):
            return _train(config, exp_dir, ctx, console)
    finally:
        cleanup(ctx)


@dataclass
class Session:
    """A prepared experiment: what ``run`` needs. Tests may swap ``data`` to inject faults."""

    state: TrainState
    data: TrainData | ShardTrainData
    hooks: TrainHooks


def _train(config: ExperimentConfig, exp_dir: Path, ctx: DistContext, console: Console) -> TrainSummary:
    session = prepare(config, exp_dir, ctx, console)
    last_loss = run(session.state, session.data, session.hooks)
    best = session.hooks.best.entries
    position = session.state.position
    return TrainSummary(
        position.step, position.epoch, position.nonfinite_total, last_loss, best[0] if best else None, session.state.model
    )


def prepare(config: ExperimentConfig, exp_dir: Path, ctx: DistContext, console: Console) -> Session:
    """Set up (or resume) the experiment in ``exp_dir``: files, model, optimizer, data, hooks."""
    precision = resolve_precision(config.train.precision, ctx.device)
    log = ExperimentLog(exp_dir / layout.LOG, enabled=ctx.is_main, mirror=_tensorboard(config, exp_dir, ctx))
    resume = _start(config, exp_dir, ctx, console, log)
    tokenizer = _prepare_experiment(config, exp_dir, ctx, console)
    torch.manual_seed(config.train.seed)
    _check_vocab_size(config, tokenizer)
    model = ASRModel(config, tokenizer.vocab_size)
    seed_rank(config.train.seed, ctx.rank)  # same weights everywhere; per-rank augmentation and dropout
    if model.cmvn is not None:  # imported Whisper models have none
        model.cmvn.load_state_dict(GlobalCMVN.from_stats(*load_cmvn(exp_dir / layout.CMVN)).state_dict())
    if resume is None and config.train.init:
        load_init_weights(model, config.train.init)
    freeze_encoder(model, config.train.freeze_encoder)
    # The micro-batch and accumulation of this many ranks (asr.train.schedule); the saved config
    # and the checkpoints keep the config's own values.
    run_config = per_rank_config(config, ctx.world_size)
    state = build_train_state(run_config, model, ctx.device, precision.used, ctx)
    state.tokenizer_sha256 = directory_hash(exp_dir / layout.TOKENIZER)
    if resume is not None:
        check_tokenizer(resume, exp_dir / layout.TOKENIZER, _last_path(exp_dir))
        state.load_checkpoint(resume)
        restore_rank_rng(resume, ctx, config.train.seed)
    if precision.reason and ctx.is_main:
        console.print(f"[yellow]warning: train.precision={precision.requested} runs as {precision.used}: {precision.reason}[/yellow]")
    data = train_data(run_config, tokenizer, ctx, console, exp_dir / layout.TRAIN_REJECTED)
    _rebase_position(state.position, config, data, ctx, console)
    schedule = plan(config, data.durations, ctx.world_size)
    if ctx.is_main:
        announce(schedule, console)
    log.write({"event": "start", "step": state.step, "batch_in_epoch": state.position.batch_in_epoch,
               "resumed": resume is not None, "precision": precision.used,
               "precision_requested": precision.requested, "precision_note": precision.reason,
               "schedule": schedule.record()})  # fmt: skip
    hooks = TrainHooks(exp_dir, config, tokenizer, ctx, console, log)
    if resume is not None:
        hooks.resume(resume)
    return Session(state, data, hooks)


def _rebase_position(
    position: Position, config: ExperimentConfig, data: TrainData | ShardTrainData, ctx: DistContext, console: Console
) -> None:
    """Resumed on another number of ranks mid-epoch: the epoch's batches are dealt differently
    now, so continue it at the same fraction of this rank's batches (exact at an epoch's end;
    mid-epoch, a few utterances of that one epoch may be seen twice or not at all)."""
    before, ranks = position.world_size, ctx.world_size
    if before and before != ranks and position.batch_in_epoch:
        counted = data.rank_batch_count(position.epoch, before, per_rank_batch(config, before)[1])
        now = data.epoch_batches(position.epoch)
        rebased = min(now, round(position.batch_in_epoch * now / max(1, counted)))
        if ctx.is_main:
            console.print(f"[yellow]resumed on {ranks} rank(s) from a checkpoint of {before}: epoch "
                          f"{position.epoch} continues at batch {rebased} of {now} (was {position.batch_in_epoch} "
                          f"of {counted})[/yellow]")  # fmt: skip
        position.batch_in_epoch = rebased
    position.world_size = ranks


def _check_vocab_size(config: ExperimentConfig, tokenizer: Tokenizer) -> None:
    if config.data.vocab_size and tokenizer.vocab_size != config.data.vocab_size:
        raise TrainingError(
            f"the tokenizer has {tokenizer.vocab_size} units but data.vocab_size is "
            f"{config.data.vocab_size}: train it with `asr tokenizer train --config` or fix the key"
        )


def _tensorboard(config: ExperimentConfig, exp_dir: Path, ctx: DistContext):
    """The optional TensorBoard writer beside log.jsonl (train.tensorboard: true, rank 0)."""
    if not (config.train.tensorboard and ctx.is_main):
        return None
    from asr.tensorboard import TensorBoardMirror

    return TensorBoardMirror(exp_dir)


def _last_path(exp_dir: Path) -> Path:
    return layout.checkpoint_dir(exp_dir) / layout.LAST


def _start(config: ExperimentConfig, exp_dir: Path, ctx: DistContext, console: Console, log: ExperimentLog) -> dict | None:
    """Sweep leftovers of killed writes, and return ``last.pt`` to resume from (or None). The log
    is cut back to the checkpoint's step: what came after it is about to be redone."""
    if ctx.is_main:
        _sweep(exp_dir)
    last_path = _last_path(exp_dir)
    if not last_path.is_file():
        log.set_aside()  # a run that died before its first checkpoint starts over
        return None
    resume = load_checkpoint(last_path)
    _check_resumable(resume["config"], config, exp_dir)
    log.cut_to(resume.get("log_records"), resume["position"]["step"])
    if ctx.is_main:
        console.print(f"resuming {exp_dir} from step {resume['position']['step']}")
    return resume


def _sweep(exp_dir: Path) -> None:
    """Remove temp files of killed writes from the folders the trainer writes (not decode/)."""
    for path in exp_dir.glob(f"{files.TEMP_PREFIX}*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    files.sweep_temp_files(layout.checkpoint_dir(exp_dir))
    files.sweep_temp_files(exp_dir / layout.TOKENIZER)


# Sections that must not change when an experiment is resumed with another config.
_FROZEN_SECTIONS = ("data", "features", "model")


def _check_resumable(saved: dict, config: ExperimentConfig, exp_dir: Path) -> None:
    current = to_dict(config)
    for section in _FROZEN_SECTIONS:
        for key, value in saved[section].items():
            if current[section].get(key) != value:
                raise TrainingError(
                    f"{exp_dir} was trained with {section}.{key}={value!r} but the config says "
                    f"{current[section].get(key)!r}; use a new --exp directory to change it"
                )


def _prepare_experiment(config: ExperimentConfig, exp_dir: Path, ctx: DistContext, console: Console) -> Tokenizer:
    """Write config, tokenizer and CMVN statistics into the experiment (rank 0 only)."""
    if ctx.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        with files.atomic_path(exp_dir / layout.CONFIG) as tmp:
            save_config(config, tmp)
        _copy_tokenizer(config, exp_dir)
        if config.features.cmvn and not (exp_dir / layout.CMVN).is_file():
            _write_cmvn(config, exp_dir, console)
        if not (exp_dir / DURATIONS).is_file():  # what transcription caps its segments at
            write_training_durations(training_manifest(config), config.data.max_duration, exp_dir)
    barrier(ctx)
    return load_tokenizer(exp_dir / layout.TOKENIZER)


def _write_cmvn(config: ExperimentConfig, exp_dir: Path, console: Console) -> None:
    """CMVN statistics of the training audio, never of unusable audio (NaN, silence, truncation):
    the manifest's screened utterances, or the shards' (screened when written)."""
    audio = None
    if config.data.train_shards:
        index = read_shards(config.data.train_shards)
        utterances, audio = list(index.utterances), index.audio(config.features.sample_rate)
    else:
        utterances = usable_utterances(config.data.train_manifest, exp_dir / layout.TRAIN_REJECTED, config.data.num_workers, console)
    mean, var = compute_cmvn_stats(
        utterances, config.features, max_utterances=config.features.cmvn_max_utterances,
        num_workers=config.data.num_workers, console=console, audio=audio,
    )  # fmt: skip
    save_cmvn(exp_dir / layout.CMVN, mean, var)


def _copy_tokenizer(config: ExperimentConfig, exp_dir: Path) -> None:
    """Copy data.tokenizer into the experiment once; later runs must find the same one there."""
    target = exp_dir / layout.TOKENIZER
    source = Path(config.data.tokenizer) if config.data.tokenizer else None
    if target.is_dir() and any(target.iterdir()):
        if source is not None and source.is_dir() and not _same_files(source, target):
            raise TrainingError(
                f"data.tokenizer={source} differs from {target}, the tokenizer this experiment "
                "started with; restore it, or train into a new --exp"
            )
        return
    if source is None:
        raise TrainingError("data.tokenizer is not set (make one with `asr tokenizer train`)")
    load_tokenizer(source)  # a clear error if it is not a tokenizer
    # Copied as a whole folder, renamed into place: a kill never leaves half a tokenizer.
    staging = exp_dir / f"{files.TEMP_PREFIX}{layout.TOKENIZER}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for path in sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")):
        files.copy_file(path, staging / path.name)
    if target.is_dir():
        target.rmdir()  # empty (checked above)
    os.replace(staging, target)


def _same_files(source: Path, target: Path) -> bool:
    """Whether every file of the experiment's tokenizer copy has the same bytes in ``source``."""
    for copied in (p for p in target.iterdir() if p.is_file() and not p.name.startswith(".")):
        original = source / copied.name
        if not original.is_file() or original.read_bytes() != copied.read_bytes():
            return False
    return True
