"""train_step alone, on a tiny model and hand-made batches: accumulation, clipping, skipped updates."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from asr.config import load_config
from asr.data.dataset import Batch
from asr.model import ASRModel
from asr.train.optim import build_optimizer
from asr.train.state import build_train_state
from asr.train.step import train_step
from toy import TINY_MODEL

VOCAB = 30


def _state(*overrides: str):
    config = load_config("configs/tiny.yaml", [*TINY_MODEL, "train.warmup_steps=2", *overrides])
    torch.manual_seed(0)
    model = ASRModel(config, VOCAB)
    return build_train_state(config, model, torch.device("cpu"), "fp32")


def _batch(seed: int, size: int = 2) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([16000, 12000][:size])
    waves = 0.1 * torch.randn(size, 16000, generator=generator)
    waves[1:, 12000:] = 0.0
    tokens = torch.randint(3, VOCAB, (size, 5), generator=generator)
    return Batch([f"u{seed}-{i}" for i in range(size)], waves, lengths, tokens, torch.tensor([5, 3][:size]))


def _poisoned(batch: Batch) -> Batch:
    return dataclasses.replace(batch, waves=batch.waves * float("nan"))


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_an_update_over_two_micro_batches_is_the_accumulated_gradient_step():
    state = _state("train.accum_steps=2", "train.grad_clip=0.5")
    reference = copy.deepcopy(state.model)
    optimizer = build_optimizer(reference, state.config)
    for param_group in optimizer.param_groups:  # the schedule's first factor (step 0 of warmup 2)
        param_group["lr"] = state.optimizer.param_groups[0]["lr"]
    batches = [_batch(1), _batch(2)]

    torch.manual_seed(5)
    result = train_step(state, batches)

    torch.manual_seed(5)  # the same dropout and SpecAugment draws, by hand
    losses = []
    for batch in batches:
        loss = reference(batch.waves, batch.wave_lengths, batch.tokens, batch.token_lengths).loss
        (loss / 2).backward()
        losses.append(loss.item())
    norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    optimizer.step()

    assert result.batches == 2 and result.updates == 1 and not result.skipped
    assert result.mean_loss == pytest.approx(sum(losses) / 2, rel=1e-6)
    assert result.grad_norm == pytest.approx(float(norm), rel=1e-6) and result.grad_norm > 0.5  # it clipped
    assert state.position.step == 1 and state.position.batch_in_epoch == 2
    for name, value in reference.named_parameters():
        torch.testing.assert_close(dict(state.model.named_parameters())[name], value, rtol=0, atol=0)
    assert all(p.grad is None for p in state.model.parameters())  # zeroed for the next update


def test_a_nonfinite_batch_skips_the_whole_update_and_counts_it():
    state = _state("train.accum_steps=2")
    before = _params(state.model)
    result = train_step(state, [_batch(1), _poisoned(_batch(2))])
    assert result.skipped and result.updates == 0
    assert state.position.step == 0 and state.position.batch_in_epoch == 2
    assert (state.position.nonfinite_total, state.position.nonfinite_in_a_row) == (1, 1)
    assert all(torch.equal(before[k], v) for k, v in _params(state.model).items())
    assert state.optimizer.state_dict()["state"] == {}  # the optimizer never stepped
    assert state.scheduler.last_epoch == 0

    result = train_step(state, [_batch(3), _batch(4)])  # training goes on, the streak is reset
    assert not result.skipped and state.position.step == 1
    assert (state.position.nonfinite_total, state.position.nonfinite_in_a_row) == (1, 0)
    assert any(not torch.equal(before[k], v) for k, v in _params(state.model).items())


def test_the_last_group_of_an_epoch_may_be_shorter():
    state = _state("train.accum_steps=3")
    result = train_step(state, [_batch(1)])
    assert result.batches == 1 and result.updates == 1 and state.position.batch_in_epoch == 1


def test_train_step_needs_a_batch():
    with pytest.raises(ValueError, match="at least one batch"):
        train_step(_state(), [])
