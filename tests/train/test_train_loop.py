"""The training loop in-process on the toy corpus: non-finite losses, precision, experiment files."""

from __future__ import annotations

import json
import math

import pytest
import torch
from rich.console import Console

from asr import experiment
from asr.config import load_config
from asr.model import ASRModel
from asr.train.loop import TrainingError, train
from conftest import toy_overrides

QUIET = Console(quiet=True)


def _config(corpus, *extra: str):
    return load_config("configs/tiny.yaml", toy_overrides(corpus, *extra))


def _poison(monkeypatch, bad_batches: set[int]) -> None:
    """Make the loss NaN on the given (0-based) training batches."""
    original = ASRModel.encoded_losses
    calls = {"n": 0}

    def losses(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if self.training:
            if calls["n"] in bad_batches:
                result.loss = result.loss * float("nan")
            calls["n"] += 1
        return result

    monkeypatch.setattr(ASRModel, "encoded_losses", losses)


def test_a_nonfinite_loss_skips_the_update_and_is_counted(toy_corpus, tmp_path, monkeypatch):
    _poison(monkeypatch, {1, 2})
    exp = tmp_path / "exp"
    summary = train(_config(toy_corpus, "train.max_steps=4"), exp, device="cpu", console=QUIET)
    assert summary.skipped_nonfinite == 2
    assert summary.steps == 4 and math.isfinite(summary.last_train_loss)
    events = [json.loads(line) for line in (exp / experiment.LOG).read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "nonfinite"] == [1, 1]  # both after step 1
    params = summary.model.state_dict().values()
    assert all(bool(p.isfinite().all()) for p in params if p.is_floating_point())


def test_many_nonfinite_losses_in_a_row_stop_training_with_a_clear_message(toy_corpus, tmp_path, monkeypatch):
    _poison(monkeypatch, set(range(1000)))
    with pytest.raises(TrainingError, match=r"3 non-finite losses in a row at step 0: training diverged"):
        train(_config(toy_corpus, "train.max_nonfinite=3", "train.max_steps=10"), tmp_path / "exp", device="cpu", console=QUIET)


def test_experiment_holds_everything_needed_to_decode(toy_corpus, tmp_path):
    exp = tmp_path / "exp"
    dev = f"data.dev_manifest={toy_corpus['manifest']}"
    summary = train(
        _config(toy_corpus, "train.max_steps=6", "train.valid_every=3", "train.keep_best=1",
                "train.valid_max_utterances=4", dev),
        exp, device="cpu", console=QUIET,
    )
    assert summary.steps == 6
    for name in (experiment.CONFIG, experiment.CMVN, experiment.LOG, "tokenizer/tokenizer.model", "checkpoints/last.pt"):
        assert (exp / name).is_file(), name
    best = json.loads((exp / "checkpoints" / "best.json").read_text())
    assert len(best) == 1 and (exp / "checkpoints" / best[0]["name"]).is_file()
    assert len(list((exp / "checkpoints").glob("step-*.pt"))) == 1  # keep_best=1: the other was deleted
    valid = [json.loads(l) for l in (exp / experiment.LOG).read_text().splitlines() if '"valid"' in l]
    assert [v["step"] for v in valid] == [3, 6] and all(v["utterances"] == 4 for v in valid)
    # The CMVN statistics were computed from the training data and are inside the model.
    stats = json.loads((exp / experiment.CMVN).read_text())
    model, tokenizer, _ = experiment.load_for_inference(exp)
    assert torch.allclose(model.cmvn.mean, torch.tensor(stats["mean"]))
    assert tokenizer.vocab_size == model.vocab_size


def test_bf16_autocast_trains_on_cpu(toy_corpus, tmp_path):
    summary = train(_config(toy_corpus, "train.max_steps=2", "train.precision=bf16"), tmp_path / "exp", device="cpu", console=QUIET)
    assert summary.steps == 2 and math.isfinite(summary.last_train_loss)


def test_fp16_without_cuda_is_refused(toy_corpus, tmp_path):
    with pytest.raises(TrainingError, match="fp16 needs a CUDA device"):
        train(_config(toy_corpus, "train.max_steps=1", "train.precision=fp16"), tmp_path / "exp", device="cpu", console=QUIET)


def test_resuming_with_a_different_model_is_refused(toy_corpus, tmp_path):
    exp = tmp_path / "exp"
    train(_config(toy_corpus, "train.max_steps=1"), exp, device="cpu", console=QUIET)
    with pytest.raises(TrainingError, match=r"model\.d_model=32 but the config says 48"):
        train(_config(toy_corpus, "train.max_steps=2", "model.d_model=48"), exp, device="cpu", console=QUIET)
