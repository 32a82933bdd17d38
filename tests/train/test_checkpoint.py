import json

import pytest
import torch

from asr.checkpoint import BestCheckpoints, average_checkpoints, save_checkpoint
from asr.train.optim import noam_factor


def test_save_atomic_never_leaves_a_broken_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"x": torch.tensor([1.0])}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"x": torch.tensor([2.0])}, path)
    assert torch.load(path, weights_only=True)["x"].item() == 1.0  # the previous file is intact


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((2,), value), "n": torch.tensor(3)}, "config": {}, "vocab_size": 5}


def test_best_checkpoints_keeps_the_lowest_metric_and_deletes_the_rest(tmp_path):
    best = BestCheckpoints(tmp_path, keep=2)
    assert best.consider(_state(1), 10, (0.5, 3.0))
    assert best.consider(_state(2), 20, (0.3, 2.0))
    assert best.consider(_state(3), 30, (0.3, 1.0))  # same WER, lower loss: better
    assert not best.consider(_state(4), 40, (0.9, 1.0))
    assert [p.name for p in best.best(5)] == ["step-00000030.pt", "step-00000020.pt"]
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-00000020.pt", "step-00000030.pt"]
    assert [e["step"] for e in json.loads((tmp_path / "best.json").read_text())] == [30, 20]
    assert [p.name for p in BestCheckpoints(tmp_path, keep=2).best(1)] == ["step-00000030.pt"]


def test_average_is_the_elementwise_mean(tmp_path):
    paths = []
    for i, value in enumerate([1.0, 2.0, 6.0]):
        paths.append(tmp_path / f"{i}.pt")
        torch.save(_state(value), paths[-1])
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["model"]["w"], torch.full((2,), 3.0))
    assert averaged["model"]["n"].item() == 3 and averaged["vocab_size"] == 5


def test_noam_schedule_warms_up_linearly_then_decays_as_inverse_square_root():
    assert noam_factor(0, 100) == pytest.approx(0.01)
    assert noam_factor(99, 100) == pytest.approx(1.0)
    assert noam_factor(399, 100) == pytest.approx(0.5)
    assert max(noam_factor(s, 100) for s in range(1000)) == pytest.approx(1.0)
