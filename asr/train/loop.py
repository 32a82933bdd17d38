"""`asr train`: the training loop, on one CPU, one GPU, or many under torchrun (DDP).

Resuming is exact: ``last.pt`` holds the model, optimiser, schedule, grad scaler, RNG states and
the position inside the epoch; the batches of an epoch depend only on (seed, epoch), so a resumed
run continues with the very batches, augmentation and dropout masks the interrupted one would
have used.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from asr import experiment as exp_files
from asr.config import ExperimentConfig, save_config, to_dict
from asr.data.batching import DurationBatchSampler
from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import Utterance, read_manifest
from asr.features import GlobalCMVN, compute_cmvn_stats, load_cmvn, save_cmvn
from asr.model import ASRModel, Losses
from asr.text.tokenizer import MODEL_FILE, Tokenizer
from asr.train.checkpoint import BestCheckpoints, rng_state, save_atomic
from asr.train.distributed import DistContext, any_rank, barrier, cleanup, setup_distributed
from asr.train.optim import build_optimizer, build_scheduler
from asr.train.progress import TrainProgress
from asr.train.schedule import announce, plan
from asr.train.seeding import gather_rng_states, restore_rank_rng, seed_rank
from asr.train.validate import validate


class TrainingError(RuntimeError):
    """Training cannot go on (bad set-up, or too many non-finite losses in a row)."""


@dataclass
class TrainSummary:
    steps: int
    epochs_done: int
    skipped_nonfinite: int
    last_train_loss: float
    best_dev: dict | None  # best.json entry of the best validation, if any ran
    model: ASRModel  # the trained model (unwrapped from DDP), for callers in Python


@dataclass
class _Position:
    step: int = 0  # optimiser updates taken
    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # this rank's batches already consumed in the current epoch
    nonfinite_total: int = 0


class _Window:
    """Sums over the micro-batches since the last log line."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.batches = self.utterances = self.tokens = self.correct = 0
        self.loss = self.ctc = self.attention = self.audio_seconds = 0.0

    def add(self, losses: Losses, audio_seconds: float) -> None:
        self.batches += 1
        self.loss += losses.loss.item()
        self.ctc += losses.ctc.item()
        self.attention += losses.attention.item()
        self.correct += losses.correct_tokens
        self.tokens += losses.tokens
        self.utterances += losses.utterances
        self.audio_seconds += audio_seconds

    def summary(self, world_size: int) -> dict:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        batches = max(1, self.batches)
        return {
            "loss": self.loss / batches,
            "ctc": self.ctc / batches,
            "att": self.attention / batches,
            "acc": self.correct / max(1, self.tokens),
            "utt_per_s": self.utterances * world_size / elapsed,
            "audio_s_per_s": self.audio_seconds * world_size / elapsed,
        }


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
    """Write config, tokenizer and CMVN statistics into a new experiment (rank 0 only)."""
    if ctx.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, exp_dir / exp_files.CONFIG)
        if not (exp_dir / exp_files.TOKENIZER / MODEL_FILE).is_file():
            if not config.data.tokenizer:
                raise TrainingError("data.tokenizer is not set (make one with `asr tokenizer train`)")
            Tokenizer(config.data.tokenizer).save(exp_dir / exp_files.TOKENIZER)
        if not (exp_dir / exp_files.CMVN).is_file():
            mean, var = compute_cmvn_stats(
                read_manifest(config.data.train_manifest),
                config.features,
                max_utterances=config.features.cmvn_max_utterances,
                num_workers=config.data.num_workers,
                console=console,
            )
            save_cmvn(exp_dir / exp_files.CMVN, mean, var)
    barrier(ctx)
    return Tokenizer(exp_dir / exp_files.TOKENIZER)


def _training_utterances(config: ExperimentConfig, console: Console, ctx: DistContext) -> list[Utterance]:
    utterances = read_manifest(config.data.train_manifest)
    kept = [u for u in utterances if u.duration <= config.data.max_duration]
    if ctx.is_main and len(kept) < len(utterances):
        console.print(
            f"[yellow]left out {len(utterances) - len(kept)} training utterances longer than "
            f"data.max_duration={config.data.max_duration}s[/yellow]"
        )
    if not kept:
        raise TrainingError(f"{config.data.train_manifest}: no training utterances")
    return kept


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise TrainingError("train.precision=fp16 needs a CUDA device; use bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _log(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def train(
    config: ExperimentConfig,
    exp_dir: str | Path,
    *,
    device: str | None = None,
    console: Console | None = None,
) -> TrainSummary:
    """Train (or resume training) the experiment in ``exp_dir``."""
    console = console or Console()
    exp_dir = Path(exp_dir)
    ctx = setup_distributed(device)
    try:
        return _train(config, exp_dir, ctx, console)
    finally:
        cleanup(ctx)


def _train(config: ExperimentConfig, exp_dir: Path, ctx: DistContext, console: Console) -> TrainSummary:
    cfg = config.train
    last_path = exp_files.checkpoint_dir(exp_dir) / exp_files.LAST
    resume = exp_files.load_checkpoint(last_path) if last_path.is_file() else None
    if resume is not None:
        _check_resumable(resume["config"], config, exp_dir)
        if ctx.is_main:
            console.print(f"resuming {exp_dir} from step {resume['position']['step']}")
    elif ctx.is_main and (exp_dir / exp_files.LOG).is_file():
        # A run that died before its first checkpoint: start over, keeping its log aside.
        (exp_dir / exp_files.LOG).replace(exp_dir / f"{exp_files.LOG}.{int(time.time())}")
    torch.manual_seed(cfg.seed)
    tokenizer = _prepare_experiment(config, exp_dir, ctx, console)
    if config.data.vocab_size and tokenizer.vocab_size != config.data.vocab_size:
        raise TrainingError(
            f"the tokenizer has {tokenizer.vocab_size} units but data.vocab_size is "
            f"{config.data.vocab_size}: train it with `asr tokenizer train --config` or fix the key"
        )

    model = ASRModel(config, tokenizer.vocab_size)
    seed_rank(cfg.seed, ctx.rank)  # same weights everywhere; per-rank augmentation and dropout
    mean, var = load_cmvn(exp_dir / exp_files.CMVN)
    model.cmvn.load_state_dict(GlobalCMVN.from_stats(mean, var).state_dict())
    model.to(ctx.device)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=cfg.precision == "fp16")
    position = _Position()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        position = _Position(**resume["position"])
        restore_rank_rng(resume, ctx, cfg.seed)
    ddp_model = (
        DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
        if ctx.enabled
        else model
    )

    utterances = _training_utterances(config, console, ctx)
    schedule = plan(config, [u.duration for u in utterances], ctx.world_size)
    if ctx.is_main:
        announce(schedule, console)
        _log(exp_dir / exp_files.LOG, schedule.record())
    dataset = SpeechDataset(
        utterances,
        tokenizer,
        config.features.sample_rate,
        speeds=config.augment.speeds if config.augment.speed_perturb else None,
        seed=cfg.seed,
    )
    sampler = DurationBatchSampler(
        [u.duration for u in utterances],
        schedule.batch_seconds,
        seed=cfg.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
        bucket_size=config.data.bucket_size,
    )
    dev_utterances = read_manifest(config.data.dev_manifest) if config.data.dev_manifest else []
    if cfg.valid_max_utterances and len(dev_utterances) > cfg.valid_max_utterances:
        dev_utterances = dev_utterances[: cfg.valid_max_utterances]
    best = BestCheckpoints(exp_files.checkpoint_dir(exp_dir), cfg.keep_best)
    log_path = exp_dir / exp_files.LOG

    def state() -> dict:
        return {
            **exp_files.model_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "position": vars(position).copy(),
            "rng": rng_state(),
        }

    def run_validation() -> dict | None:
        if not dev_utterances:
            return None
        result = None
        if ctx.is_main:
            result = validate(model, dev_utterances, tokenizer, config, ctx.device)
            result.update(event="valid", step=position.step, epoch=position.epoch)
            _log(log_path, result)
            kept = best.consider(
                {**exp_files.model_state(model), "dev": result},
                position.step,
                (result["wer"], result["loss"]),
            )
            console.print(
                f"[bold]dev[/bold] step {position.step}: loss {result['loss']:.3f} "
                f"WER {100 * result['wer']:.2f}%" + (" (kept)" if kept else "")
            )
        barrier(ctx)
        return result

    def save_last() -> None:
        rank_rng = gather_rng_states(ctx)
        if ctx.is_main:
            save_atomic({**state(), "rank_rng": rank_rng}, last_path)
        barrier(ctx)

    max_steps = cfg.max_steps or math.inf
    consecutive_nonfinite = 0
    last_loss = float("nan")
    progress = TrainProgress(console, enabled=ctx.is_main)
    model.train()
    with progress:
        while position.epoch < cfg.epochs and position.step < max_steps:
            sampler.set_epoch(position.epoch)
            sampler.skip(position.batch_in_epoch)
            dataset.set_epoch(position.epoch)
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_sampler=sampler,
                collate_fn=collate,
                num_workers=config.data.num_workers,
                pin_memory=ctx.device.type == "cuda",
                # Own generator: creating the loader must not consume the global RNG, whose state
                # (dropout, SpecAugment) a resumed run restores from the checkpoint.
                generator=torch.Generator().manual_seed(cfg.seed + position.epoch),
            )
            epoch_batches = len(sampler) + position.batch_in_epoch
            progress.start_epoch(position.epoch, epoch_batches, position.batch_in_epoch)
            accumulated = 0
            window = _Window()
            for batch in loader:
                batch = batch.to(ctx.device)
                accumulated += 1
                # The epoch's last batches update even when fewer than accum_steps: gradients never
                # cross an epoch boundary (a checkpoint there holds none).
                update = accumulated == schedule.accum_steps or position.batch_in_epoch + 1 == epoch_batches
                sync = contextlib.nullcontext() if update or not ctx.enabled else ddp_model.no_sync()
                with sync:
                    with _autocast(ctx.device, cfg.precision):
                        losses = ddp_model(batch.waves, batch.wave_lengths, batch.tokens, batch.token_lengths)
                    scaler.scale(losses.loss / schedule.accum_steps).backward()
                loss_value = losses.loss.item()
                window.add(losses, float(batch.wave_lengths.sum()) / config.features.sample_rate)
                position.batch_in_epoch += 1
                nonfinite = not math.isfinite(loss_value)
                if not update and not any_rank(ctx, nonfinite):
                    progress.advance(loss_value)
                    continue
                accumulated = 0
                scaler.unscale_(optimizer)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if any_rank(ctx, nonfinite or not torch.isfinite(grad_norm).item()):
                    # Skip this update everywhere; a run of them means training has diverged.
                    optimizer.zero_grad(set_to_none=True)
                    scaler.update()
                    consecutive_nonfinite += 1
                    position.nonfinite_total += 1
                    if ctx.is_main:
                        _log(log_path, {"event": "nonfinite", "step": position.step, "loss": loss_value})
                    if consecutive_nonfinite >= cfg.max_nonfinite:
                        save_last()
                        raise TrainingError(
                            f"{consecutive_nonfinite} non-finite losses in a row at step {position.step}: "
                            "training diverged; lower train.lr, raise train.warmup_steps or use fp32"
                        )
                    continue
                consecutive_nonfinite = 0
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                position.step += 1
                last_loss = loss_value
                progress.advance(loss_value, lr=scheduler.get_last_lr()[0], step=position.step)

                if position.step % cfg.log_every == 0 or position.step == max_steps:
                    record = {"event": "train", "step": position.step, "epoch": position.epoch}
                    record.update(window.summary(ctx.world_size))
                    record.update(lr=scheduler.get_last_lr()[0], grad_norm=float(grad_norm))
                    if ctx.is_main:
                        _log(log_path, record)
                        progress.update_rates(record["utt_per_s"])
                    window = _Window()
                if cfg.checkpoint_every and position.step % cfg.checkpoint_every == 0:
                    save_last()
                if cfg.valid_every and position.step % cfg.valid_every == 0:
                    model.eval()
                    run_validation()
                    model.train()
                if position.step >= max_steps:
                    break
            else:  # the epoch ran to its end
                position.epoch += 1
                position.batch_in_epoch = 0
                if not cfg.valid_every:
                    model.eval()
                    run_validation()
                    model.train()
                save_last()
                continue
            break  # max_steps reached inside the epoch
    save_last()
    if ctx.is_main:
        _log(log_path, {"event": "done", "step": position.step, "epoch": position.epoch})
    best_dev = best.entries[0] if best.entries else None
    return TrainSummary(position.step, position.epoch, position.nonfinite_total, last_loss, best_dev, model)
