"""The training loop in-process on the toy corpus: non-finite losses (injected through the batches),
precision, experiment files, final validation."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from rich.console import Console

from asr import experiment
from asr.config import ConfigError, load_config
from asr.precision import PrecisionError
from asr.train.data import group_updates
from asr.train.distributed import setup_distributed
from asr.train.loop import TrainingError, prepare, run, train
from toy import toy_overrides

QUIET = Console(quiet=True)


def _config(corpus, *extra: str):
    return load_config("configs/tiny.yaml", toy_overrides(corpus, *extra))


class PoisonedData:
    """Training data whose given (0-based) micro-batches carry NaN audio: the loss is NaN there.
    Faults go in through the batches, as they would in real data; the model is left alone."""

    def __init__(self, data, bad_batches: set[int], crash_at: int | None = None):
        self.data, self.bad, self.seen, self.crash_at = data, bad_batches, 0, crash_at

    def epoch_batches(self, epoch: int) -> int:
        return self.data.epoch_batches(epoch)

    def updates(self, position, accum_steps: int):
        def batches():
            for batch in self.data.batches(position):
                if self.seen == self.crash_at:
                    raise KeyboardInterrupt("crash")  # as abrupt as a kill: no hook runs after it
                if self.seen in self.bad:
                    batch = dataclasses.replace(batch, waves=batch.waves * float("nan"))
                self.seen += 1
                yield batch

        return group_updates(batches(), accum_steps)


def _run_poisoned(config, exp, bad_batches: set[int], crash_at: int | None = None, seen: int = 0):
    session = prepare(config, exp, setup_distributed("cpu"), QUIET)
    data = PoisonedData(session.data, bad_batches, crash_at)
    data.seen = seen  # micro-batches an earlier attempt consumed (to poison the same ones)
    return run(session.state, data, session.hooks), session.state


def test_a_resumed_run_logs_every_step_and_every_skipped_update_once(toy_corpus, tmp_path):
    config = _config(toy_corpus, "train.max_steps=6", "train.checkpoint_every=2")

    def records(exp):
        lines = [json.loads(l) for l in (exp / experiment.LOG).read_text().splitlines()]
        return [(r["event"], r["step"], r.get("loss")) for r in lines if r["event"] != "start"]

    _run_poisoned(config, tmp_path / "reference", {2, 5})
    with pytest.raises(KeyboardInterrupt):  # dies after the skipped update that follows step 4's checkpoint
        _run_poisoned(config, tmp_path / "exp", {2, 5}, crash_at=7)
    assert ("nonfinite", 4, None) in records(tmp_path / "exp")
    resumed_from = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=True)["position"]
    assert resumed_from["step"] == 4
    _run_poisoned(config, tmp_path / "exp", {2, 5}, seen=resumed_from["batch_in_epoch"])
    assert records(tmp_path / "exp") == records(tmp_path / "reference")
    assert [e for e, *_ in records(tmp_path / "reference")].count("nonfinite") == 2


def test_a_nonfinite_loss_skips_the_update_and_is_counted(toy_corpus, tmp_path):
    exp = tmp_path / "exp"
    last_loss, state = _run_poisoned(_config(toy_corpus, "train.max_steps=4"), exp, {1, 2})
    assert state.position.nonfinite_total == 2
    assert state.step == 4 and math.isfinite(last_loss)
    events = [json.loads(line) for line in (exp / experiment.LOG).read_text().splitlines()]
    skipped = [e for e in events if e["event"] == "nonfinite"]
    assert [e["step"] for e in skipped] == [1, 1] and all(e["loss"] is None for e in skipped)  # strict JSON
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2, 3, 4]
    assert all(math.isfinite(e["loss"]) for e in events if e["event"] == "train")
    params = state.model.state_dict().values()
    assert all(bool(p.isfinite().all()) for p in params if p.is_floating_point())


def test_many_nonfinite_losses_in_a_row_stop_training_with_a_clear_message(toy_corpus, tmp_path):
    config = _config(toy_corpus, "train.max_nonfinite=3", "train.max_steps=10")
    with pytest.raises(TrainingError, match=r"3 non-finite losses in a row at step 0: training diverged"):
        _run_poisoned(config, tmp_path / "exp", set(range(1000)))
    saved = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["position"]["nonfinite_in_a_row"] == 3 and saved["position"]["step"] == 0


def test_max_steps_inside_an_epoch_still_validates_the_final_model(toy_corpus, tmp_path):
    exp = tmp_path / "exp"
    dev = f"data.dev_manifest={toy_corpus['manifest']}"
    summary = train(_config(toy_corpus, "train.max_steps=3", "train.valid_max_utterances=4", dev), exp, device="cpu", console=QUIET)
    assert summary.steps == 3 and summary.epochs_done == 0  # stopped inside the first epoch
    valid = [json.loads(l) for l in (exp / experiment.LOG).read_text().splitlines() if '"valid"' in l]
    assert [v["step"] for v in valid] == [3]
    assert summary.best_dev["step"] == 3


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
    with pytest.raises(PrecisionError, match="fp16 needs a CUDA device"):
        train(_config(toy_corpus, "train.max_steps=1", "train.precision=fp16"), tmp_path / "exp", device="cpu", console=QUIET)


def test_resuming_with_a_different_model_is_refused(toy_corpus, tmp_path):
    exp = tmp_path / "exp"
    train(_config(toy_corpus, "train.max_steps=1"), exp, device="cpu", console=QUIET)
    with pytest.raises(TrainingError, match=r"model\.d_model=32 but the config says 48"):
        train(_config(toy_corpus, "train.max_steps=2", "model.d_model=48"), exp, device="cpu", console=QUIET)


def _other_tokenizer(corpus, directory):
    """A tokenizer with the same vocabulary size as the corpus's, but other pieces (BPE, not unigram)."""
    from asr.data.manifest import manifest_texts
    from asr.text.tokenizer import train_tokenizer

    return train_tokenizer(manifest_texts([corpus["manifest"]]), directory / "tokenizer", vocab_size=40, model_type="bpe")


def test_a_tokenizer_changed_after_a_failed_first_attempt_is_refused(toy_corpus, tmp_path):
    import shutil

    tokenizer = tmp_path / "tokenizer"
    shutil.copytree(toy_corpus["tokenizer"], tokenizer)
    corpus = {**toy_corpus, "tokenizer": tokenizer}
    exp = tmp_path / "exp"
    with pytest.raises(FileNotFoundError):  # the first attempt dies after copying the tokenizer
        train(_config(corpus, "train.max_steps=1", f"data.dev_manifest={tmp_path / 'missing.jsonl'}"), exp, device="cpu", console=QUIET)
    assert (exp / "tokenizer" / "tokenizer.model").is_file()
    other = _other_tokenizer(toy_corpus, tmp_path / "other")
    assert other.vocab_size == 40
    shutil.copyfile(tmp_path / "other" / "tokenizer" / "tokenizer.model", tokenizer / "tokenizer.model")
    with pytest.raises(TrainingError, match=r"data.tokenizer=.* differs from .*exp/tokenizer, the tokenizer this experiment started with"):
        train(_config(corpus, "train.max_steps=1"), exp, device="cpu", console=QUIET)


def test_resuming_with_another_tokenizer_in_both_places_is_refused_by_the_checkpoint(toy_corpus, tmp_path):
    import shutil

    tokenizer = tmp_path / "tokenizer"
    shutil.copytree(toy_corpus["tokenizer"], tokenizer)
    corpus = {**toy_corpus, "tokenizer": tokenizer}
    exp = tmp_path / "exp"
    train(_config(corpus, "train.max_steps=1"), exp, device="cpu", console=QUIET)
    _other_tokenizer(toy_corpus, tmp_path / "other")
    for target in (tokenizer, exp / "tokenizer"):  # same vocabulary size, other pieces
        shutil.copyfile(tmp_path / "other" / "tokenizer" / "tokenizer.model", target / "tokenizer.model")
    with pytest.raises(ValueError, match=r"last\.pt was trained with a different tokenizer than"):
        train(_config(corpus, "train.max_steps=2"), exp, device="cpu", console=QUIET)


def test_a_resume_may_change_loader_settings_but_not_what_is_trained_on(toy_corpus, tmp_path):
    import shutil

    exp, speeds = tmp_path / "exp", ("augment.speed_perturb=true", "augment.speeds=[0.9,1.0,1.1]")
    train(_config(toy_corpus, "train.max_steps=1", *speeds), exp, device="cpu", console=QUIET)
    moved = shutil.copytree(toy_corpus["tokenizer"], tmp_path / "moved" / "tokenizer")
    refused = {  # change -> the key the refusal names
        f"data.train_manifest={tmp_path / 'other.jsonl'}": r"data\.train_manifest=.*train\.jsonl' but the config says .*other\.jsonl'",
        "augment.speeds=[0.8,1.0,1.2]": r"augment\.speeds=\[0\.9, 1\.0, 1\.1\] but the config says \[0\.8, 1\.0, 1\.2\]",
        "augment.speed_perturb=false": r"augment\.speed_perturb=True but the config says False",
        "data.max_batch_seconds=3": r"data\.max_batch_seconds=4\.0 but the config says 3\.0",
        "data.bucket_size=4": r"data\.bucket_size=8 but the config says 4",
    }
    for change, message in refused.items():
        with pytest.raises(TrainingError, match=message + "; a resumed run must keep the model and what it is trained on"):
            train(_config(toy_corpus, "train.max_steps=2", *speeds, change), exp, device="cpu", console=QUIET)
    loader_only = ["data.num_workers=1", f"data.tokenizer={moved}", "data.vocab_size=35", "augment.freq_masks=1"]
    summary = train(_config(toy_corpus, "train.max_steps=2", *speeds, *loader_only), exp, device="cpu", console=QUIET)
    assert summary.steps == 2


def test_from_shards_the_loader_workers_are_part_of_what_is_trained_on(tmp_path):
    from asr.config import ExperimentConfig, to_dict
    from asr.train.loop import _check_resumable

    def config(**data):
        return dataclasses.replace(ExperimentConfig(), data=dataclasses.replace(ExperimentConfig().data, **data))

    saved = to_dict(config(train_shards="shards", num_workers=2))
    _check_resumable(saved, config(train_shards="shards", num_workers=2, vocab_size=35), tmp_path)
    with pytest.raises(TrainingError, match=r"data\.num_workers=2 but the config says 4"):  # each worker batches its own shards
        _check_resumable(saved, config(train_shards="shards", num_workers=4), tmp_path)
    with pytest.raises(TrainingError, match=r"data\.shard_window=1 but the config says 3"):
        _check_resumable(saved, config(train_shards="shards", num_workers=2, shard_window=3), tmp_path)
    _check_resumable(to_dict(config(num_workers=2)), config(num_workers=4, shard_window=3), tmp_path)  # manifest: loader only
