"""One optimizer update: ``train_step(state, batches) -> StepResult``.

This is the step `asr train` and `asr lm train` take and `bench/train_speed.py` times. It does no
I/O, logging or checkpointing; the loop (``asr.train.loop``) calls hooks for those. What one
micro-batch's loss is comes from ``state.losses`` (:func:`speech_losses` for the recogniser,
asr.lm.train's for a language model); the rest of the update is the same for both.

An update runs forward and backward over its micro-batches (gradient accumulation: each loss is
divided by ``accum_steps``, and under DDP only the last micro-batch synchronises gradients), then
unscales (fp16), clips the gradient norm and steps the optimizer and schedule. An update whose loss
or gradient norm is not finite on any rank is skipped on every rank: gradients are dropped, the
scaler lowers its scale, and the skip is counted in ``state.position``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from asr.data.dataset import Batch
from asr.train.distributed import any_rank
from asr.precision import autocast
from asr.train.state import TrainState


@dataclass
class StepResult:
    """What one update did; sums over its micro-batches so that results add up (``+``)."""

    batches: int = 0  # micro-batches
    loss: float = 0.0  # sum over micro-batches of the optimised loss
    ctc: float = 0.0
    attention: float = 0.0
    correct_tokens: int = 0
    tokens: int = 0
    utterances: int = 0
    audio_seconds: float = 0.0
    grad_norm: float = float("nan")  # before clipping
    skipped: bool = False  # not applied: the loss or gradient was not finite
    updates: int = 0  # updates applied (1 per train_step that was not skipped)

    @property
    def mean_loss(self) -> float:
        return self.loss / max(1, self.batches)

    def __add__(self, other: StepResult) -> StepResult:
        return StepResult(
            batches=self.batches + other.batches,
            loss=self.loss + other.loss,
            ctc=self.ctc + other.ctc,
            attention=self.attention + other.attention,
            correct_tokens=self.correct_tokens + other.correct_tokens,
            tokens=self.tokens + other.tokens,
            utterances=self.utterances + other.utterances,
            audio_seconds=self.audio_seconds + other.audio_seconds,
            grad_norm=other.grad_norm,
            skipped=other.skipped,
            updates=self.updates + other.updates,
        )


@dataclass
class MicroBatchLoss:
    """One micro-batch's loss, and what its StepResult records."""

    loss: Tensor  # what is optimised
    logged: dict[str, Tensor]  # float fields of StepResult, read after the backward pass (one host sync)
    counts: StepResult  # the fields known without a sync


def speech_losses(state: TrainState, batch: Batch) -> MicroBatchLoss:
    """The recogniser's hybrid CTC/attention loss, through ``state.module`` (DDP, if any)."""
    losses = state.module(batch.waves, batch.wave_lengths, batch.tokens, batch.token_lengths)
    seconds = batch.wave_lengths.sum().double() / state.model.config.features.sample_rate  # float64: exact
    logged = {"loss": losses.loss, "ctc": losses.ctc, "attention": losses.attention, "audio_seconds": seconds}
    counts = StepResult(batches=1, correct_tokens=losses.correct_tokens, tokens=losses.tokens, utterances=losses.utterances)
    return MicroBatchLoss(losses.loss, logged, counts)


def _forward_backward(state: TrainState, batch: Any, sync: bool) -> StepResult:
    """Forward and backward of one micro-batch; gradients add up in the parameters."""
    batch = batch.to(state.device)
    ddp = state.ctx is not None and state.ctx.enabled
    no_sync = state.module.no_sync() if ddp and not sync else contextlib.nullcontext()
    with no_sync:
        with autocast(state.device, state.precision):
            out = (state.losses or speech_losses)(state, batch)
        state.scaler.scale(out.loss / state.config.accum_steps).backward()
    values = torch.stack(list(out.logged.values())).detach().tolist()
    return dataclasses.replace(out.counts, **dict(zip(out.logged, values)))


def train_step(state: TrainState, batches: Sequence[Any]) -> StepResult:
    """One update over ``batches`` (the micro-batches to accumulate; usually ``accum_steps``).

    Advances ``state.position``: batches consumed, and either the update count or the counts of
    skipped (non-finite) updates.
    """
    if not batches:
        raise ValueError("train_step needs at least one batch")
    result = StepResult()
    for index, batch in enumerate(batches):
        result = result + _forward_backward(state, batch, index == len(batches) - 1)
    state.position.batch_in_epoch += len(batches)
    state.scaler.unscale_(state.optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), state.config.grad_clip)
    result.grad_norm = float(grad_norm)
    nonfinite = not (math.isfinite(result.loss) and math.isfinite(result.grad_norm))
    if state.ctx is not None:
        nonfinite = any_rank(state.ctx, nonfinite)  # every rank takes the same branch
    if nonfinite:
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.update()
        state.position.nonfinite_total += 1
        state.position.nonfinite_in_a_row += 1
        result.skipped = True
        return result
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.optimizer.zero_grad(set_to_none=True)
    state.scheduler.step()
    state.position.step += 1
    state.position.nonfinite_in_a_row = 0
    result.updates = 1
    return result
