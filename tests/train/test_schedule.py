"""The schedule per optimizer update: the same effective batch, updates and learning rates on
any number of ranks; the warmup warning; `asr train --dry-run`."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console

from asr import experiment
from asr.config import load_config
from asr.train.loop import train
from asr.train.schedule import per_rank_batch, plan

from toy import toy_overrides

HERE = Path(__file__).parent
QUIET = Console(quiet=True)


def _config(*overrides: str):
    return load_config("configs/tiny.yaml", list(overrides))


def _durations(count: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(1.0, 17.0) for _ in range(count)]


def test_other_gpu_counts_keep_the_batch_per_update():
    config = _config("data.max_batch_seconds=100", "train.accum_steps=2", "train.gpus=4")
    assert per_rank_batch(config, 4) == (2, 100.0)
    assert per_rank_batch(config, 1) == (8, 100.0)
    assert per_rank_batch(config, 2) == (4, 100.0)
    assert per_rank_batch(config, 8) == (1, 100.0)
    accum, seconds = per_rank_batch(config, 16)  # fewer micro-batches than ranks: smaller ones
    assert accum == 1 and seconds == pytest.approx(50.0)
    accum, seconds = per_rank_batch(config, 3)  # 8 micro-batches on 3 ranks: 3 x 3 smaller ones
    assert accum == 3 and seconds == pytest.approx(800 / 9) and seconds <= 100.0
    for ranks in (1, 2, 3, 4, 5, 8, 16):
        accum, seconds = per_rank_batch(config, ranks)
        assert seconds * accum * ranks == pytest.approx(800.0)


def test_one_rank_accumulating_takes_as_many_updates_as_several_ranks():
    durations = _durations(3001)
    config = _config("data.max_batch_seconds=60", "train.gpus=4", "train.epochs=7", "train.warmup_steps=100")
    schedules = [plan(config, durations, ranks) for ranks in (1, 2, 4)]
    assert [s.accum_steps for s in schedules] == [4, 2, 1]
    assert len({s.updates_per_epoch for s in schedules}) == 1
    assert len({s.update_seconds for s in schedules}) == 1
    first = schedules[0]
    assert first.total_updates == 7 * first.updates_per_epoch
    # A 60 s micro-batch of 1-17 s utterances leaves a few seconds unfilled: not many more
    # updates than 240 s of audio each would give.
    assert sum(durations) / 240 <= first.updates_per_epoch <= 1.2 * sum(durations) / 240
    assert first.warmup_fraction == pytest.approx(100 / first.total_updates)
    assert first.warnings() == []
    assert schedules[1].adjusted and "written for 4 GPU(s); on 2" in "\n".join(schedules[1].lines())


def test_warmup_longer_than_30_percent_of_the_run_is_warned_about():
    config = _config("data.max_batch_seconds=60", "train.epochs=2", "train.warmup_steps=25000", "train.max_steps=0")
    schedule = plan(config, _durations(500), 1)
    assert schedule.warmup_fraction > 1
    (warning,) = schedule.warnings()
    assert "never reaches its peak" in warning and "train.warmup_steps" in warning
    short = plan(_config("train.epochs=2", "train.max_steps=10", "train.warmup_steps=4"), _durations(500), 1)
    assert short.total_updates == 10 and "40% of the run" in short.warnings()[0].replace("peak learning rate comes after ", "")


def _learning_rates(exp: Path) -> list[tuple[int, float]]:
    events = [json.loads(line) for line in (exp / experiment.LOG).read_text().splitlines()]
    return [(e["step"], e["lr"]) for e in events if e["event"] == "train"]


def test_one_rank_and_two_gloo_ranks_take_the_same_updates_at_the_same_learning_rates(toy_corpus, tmp_path):
    overrides = toy_overrides(
        toy_corpus, "train.gpus=2", "train.epochs=2", "train.checkpoint_every=0", "data.max_batch_seconds=3",
    )
    single = train(load_config("configs/tiny.yaml", overrides), tmp_path / "one", device="cpu", console=QUIET)
    out = tmp_path / "params"
    out.mkdir()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29541",
        str(HERE / "ddp_worker.py"), "configs/tiny.yaml", str(tmp_path / "two"), str(out), *overrides,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parents[1], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _learning_rates(tmp_path / "one"), _learning_rates(tmp_path / "two")
    assert single.steps >= 8 and len(one) == single.steps
    assert [step for step, _ in one] == list(range(1, single.steps + 1))
    assert one == two
    starts = [
        json.loads(line) for exp in ("one", "two")
        for line in (tmp_path / exp / experiment.LOG).read_text().splitlines() if '"start"' in line
    ]
    schedules = [start["schedule"] for start in starts]
    assert [(s["ranks"], s["accum_steps"]) for s in schedules] == [(1, 2), (2, 1)]
    assert {s["total_updates"] for s in schedules} == {single.steps}
    # Each rank's own random stream (augmentation, dropout) is kept for resuming.
    rank_rng = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)["rank_rng"]
    assert len(rank_rng) == 2 and not torch.equal(rank_rng[0]["torch"], rank_rng[1]["torch"])


def test_a_tokenizer_of_another_size_than_data_vocab_size_stops_training(toy_corpus, tmp_path):
    from asr.text.tokenizer import load_tokenizer
    from asr.train.loop import TrainingError

    units = load_tokenizer(toy_corpus["tokenizer"]).vocab_size
    config = load_config("configs/tiny.yaml", toy_overrides(toy_corpus, f"data.vocab_size={units + 1}"))
    with pytest.raises(TrainingError, match=f"the tokenizer has {units} units but data.vocab_size is {units + 1}"):
        train(config, tmp_path / "exp", device="cpu", console=QUIET)
