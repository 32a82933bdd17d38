"""asr.plot and asr.tensorboard: the pictures render (size, not blank), their data is written,
and the TensorBoard mirror of log.jsonl holds the logged values."""

import json

import matplotlib.image
import numpy as np
import pytest

import asr
from asr.plot import PlotError, attention_data, plot_attention, plot_training, training_data
from asr.tensorboard import TensorBoardMirror
from asr.train.log import ExperimentLog

TEXTS = ["HELLO WORLD", "GOOD MORNING", "THE CAT SAT ON THE MAT", "ONE TWO THREE", "A DOG", "YES NO"]


def _speechlike(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t + i) for i, f in enumerate((220.0, 540.0, 1300.0)))
    return (0.07 * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2) * wave).astype(np.float32)


def _not_blank(path, min_size: tuple[int, int]) -> None:
    image = matplotlib.image.imread(path)  # (H, W, 4) floats
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    colours = np.unique(image[..., :3].reshape(-1, 3).round(2), axis=0)
    assert len(colours) > 50  # a blank or single-colour canvas has a handful
    assert image[..., :3].std() > 0.05


def test_attention_picture_has_a_panel_per_layer_and_head_and_its_data(random_experiment, tmp_path):
    exp, model = random_experiment(TEXTS)
    recognizer = asr.load(exp)
    data = attention_data(recognizer, _speechlike(1.5), method="joint_beam", beam=3)
    layers, heads = len(model.decoder.blocks), model.config.model.decoder.heads
    assert len(data["attention"]) == layers and len(data["attention"][0]) == heads
    tokens, frames = len(data["tokens"]), len(data["attention"][0][0][0])
    assert data["tokens"][-1] == "<eos>" and tokens >= 2
    assert np.allclose(np.array(data["attention"]).sum(-1), 1.0, atol=1e-4)  # each row: a distribution over frames
    assert np.array(data["ctc"]).shape == (tokens - 1, frames)
    assert len(data["ctc_spans"]) == tokens - 1
    png, data_path = plot_attention(data, tmp_path / "att.png")
    _not_blank(png, (300, 600))
    assert json.loads(data_path.read_text())["tokens"] == data["tokens"]


def _log(tmp_path, steps=30):
    log = ExperimentLog(tmp_path / "log.jsonl")
    for step in range(1, steps + 1):
        log.write({"event": "train", "step": step, "loss": 100.0 / step, "lr": 1e-4 * step, "utt_per_s": 50 + step % 7})
        if step % 10 == 0:
            log.write({"event": "valid", "step": step, "loss": 120.0 / step, "wer": 1.0 / step})
    with (tmp_path / "log.jsonl").open("a") as f:
        f.write('{"event": "train", "step": 31, "lo')  # a line cut short by a kill is skipped


def test_training_curves_render_from_the_log(tmp_path):
    _log(tmp_path)
    data = training_data(tmp_path)
    assert data["train"]["step"] == list(range(1, 31)) and data["valid"]["wer"] == [0.1, 0.05, 1 / 30]
    png, data_path = plot_training(data, tmp_path / "plots" / "training.png")
    _not_blank(png, (500, 750))
    assert json.loads(data_path.read_text()) == data


def test_no_log_is_a_one_line_error(tmp_path):
    with pytest.raises(PlotError, match="log.jsonl not found"):
        training_data(tmp_path)


def test_the_tensorboard_mirror_holds_every_logged_number(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = ExperimentLog(tmp_path / "log.jsonl", mirror=TensorBoardMirror(tmp_path))
    for step in (10, 20):
        log.write({"event": "train", "step": step, "loss": 5.0 / step, "lr": 0.1, "epoch": 0, "note": "x"})
    log.write({"event": "valid", "step": 20, "wer": 0.25})
    log.write({"event": "done"})  # no step: not a scalar
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["train/loss", "train/lr", "valid/wer"]
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")] == [(10, 0.5), (20, 0.25)]
    assert [(e.step, e.value) for e in events.Scalars("valid/wer")] == [(20, 0.25)]


def test_train_tensorboard_true_gives_the_loop_a_mirror_on_rank_0_only(tmp_path):
    from types import SimpleNamespace

    from asr.config import load_config
    from asr.train.loop import _tensorboard

    on = load_config(None, ["train.tensorboard=true"])
    assert isinstance(_tensorboard(on, tmp_path, SimpleNamespace(is_main=True)), TensorBoardMirror)
    assert _tensorboard(on, tmp_path, SimpleNamespace(is_main=False)) is None
    assert _tensorboard(load_config(None), tmp_path, SimpleNamespace(is_main=True)) is None
