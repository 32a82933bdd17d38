"""asr.train.budget: the parameters are counted exactly without allocating them, and a model that
fits is not refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asr.config import load_config
from asr.finetune import freeze_encoder
from asr.memory import MemoryBudgetError
from asr.model import ASRModel
from asr.train.budget import activation_bytes, check_train_memory, parameter_counts
from asr.whisper.dims import WhisperDims, whisper_config

CONFIGS = sorted(Path("configs").glob("*.yaml"))
TINY_EN = WhisperDims(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4)  # Whisper tiny.en


def _counted(model: ASRModel) -> tuple[int, int]:
    params = {id(p): p for p in model.parameters()}.values()  # tied weights once
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_the_meta_count_is_the_real_models(path: Path):
    config = load_config(path)
    assert parameter_counts(config, 500) == _counted(ASRModel(config, 500))


def test_a_frozen_encoder_and_tied_output_of_a_whisper_model_are_counted_as_training_sees_them():
    config = whisper_config(TINY_EN, {})
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, freeze_encoder=2))
    model = ASRModel(config, TINY_EN.n_vocab)
    freeze_encoder(model, 2)
    total, trainable = parameter_counts(config, TINY_EN.n_vocab)
    assert (total, trainable) == _counted(model) and trainable < total


def test_a_model_that_fits_passes_and_one_that_cannot_is_refused_naming_the_keys(monkeypatch):
    config = load_config("configs/tiny.yaml")
    assert 0 < activation_bytes(config, 500) < 2**30
    check_train_memory(config, 500)  # 1.6M parameters: fits anywhere
    monkeypatch.setattr("asr.memory.available_bytes", lambda device="cpu": 100 << 20)
    huge = load_config("configs/tiny.yaml", ["model.d_model=4096", "model.encoder.ff_dim=16384"])
    with pytest.raises(MemoryBudgetError, match=r"model\.d_model=4096, model\.encoder\.layers=4 of ff_dim 16384.* but only 0\.10 GiB"):
        check_train_memory(huge, 500)
