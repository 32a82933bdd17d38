"""asr.checkpoint: atomic save, verified load (content and tokenizer hashes), best-K, averaging."""

import json
import zipfile

import pytest
import torch
from typer.testing import CliRunner

from asr import experiment
from asr.checkpoint import (
    BestCheckpoints,
    CheckpointError,
    average_checkpoints,
    directory_hash,
    load_checkpoint,
    model_state,
    save_checkpoint,
)
from asr.cli import app


def _state(value: float, shape=(2,)) -> dict:
    return {"model": {"w": torch.full(shape, value), "n": torch.tensor(3)}, "config": {}, "vocab_size": 5}


def _flip_a_tensor_byte(path) -> None:
    """Flip one byte inside the first tensor's stored data (the pickle itself stays readable)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and not i.filename.endswith("serialization_id"))
    data = bytearray(path.read_bytes())
    with path.open("rb") as f:  # the member's data starts after its local header
        f.seek(info.header_offset + 26)
        name_length, extra_length = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
    data[info.header_offset + 30 + name_length + extra_length + 1] ^= 0x40
    path.write_bytes(bytes(data))


def test_save_never_leaves_a_broken_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"x": torch.tensor([1.0])}}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"model": {"x": torch.tensor([2.0])}}, path)
    assert load_checkpoint(path)["model"]["x"].item() == 1.0  # the previous file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # and no temp file is left


def test_a_flipped_byte_is_found_on_load(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(_state(1.5, (64,)), path)
    _flip_a_tensor_byte(path)
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["w"], torch.full((64,), 1.5))  # torch alone loads it
    with pytest.raises(CheckpointError, match=r"c\.pt: contents do not match the checkpoint's hash"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "not a dict"])
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, damage):
    path = tmp_path / "c.pt"
    save_checkpoint(_state(1.0), path)
    data = path.read_bytes()
    if damage == "not a dict":
        torch.save([1, 2], path)
    else:
        path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00junk" * 50}[damage])
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


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
    assert best.consider(_state(3), 30, (0.3, 1.0))  # considered again after a resume: no change
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-00000020.pt", "step-00000030.pt"]


def test_average_is_the_elementwise_mean(tmp_path):
    paths = []
    for i, value in enumerate([1.0, 2.0, 6.0]):
        paths.append(tmp_path / f"{i}.pt")
        save_checkpoint(_state(value), paths[-1])
    averaged = average_checkpoints(paths)
    assert torch.equal(averaged["model"]["w"], torch.full((2,), 3.0))
    assert averaged["model"]["n"].item() == 3 and averaged["vocab_size"] == 5


def test_averaging_different_shapes_is_one_line(tmp_path):
    save_checkpoint(_state(1.0), tmp_path / "a.pt")
    save_checkpoint(_state(1.0, (3,)), tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match=r"b\.pt: w has shape \(3,\) but \(2,\) in .*a\.pt; only checkpoints of one model"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])


def test_decoding_refuses_a_tokenizer_other_than_the_trained_one(random_experiment, tmp_path):
    exp, model = random_experiment(["one two three", "four five six", "seven eight nine"])
    tokenizer = exp / experiment.TOKENIZER
    path = experiment.checkpoint_dir(exp) / experiment.LAST
    save_checkpoint(model_state(model, directory_hash(tokenizer)), path)
    experiment.load_for_inference(exp)  # the right tokenizer: fine

    other, _ = random_experiment(["nine eight seven", "six five four", "three two one"])  # same vocab size
    (tokenizer / "tokenizer.model").write_bytes((other / experiment.TOKENIZER / "tokenizer.model").read_bytes())
    with pytest.raises(CheckpointError, match="was trained with a different tokenizer than"):
        experiment.load_for_inference(exp)
    result = CliRunner().invoke(app, ["transcribe", "--exp", str(exp), str(tmp_path / "missing.wav")])
    assert result.exit_code == 2
    assert "different tokenizer" in result.output and "Traceback" not in result.output


def test_loading_for_decoding_does_not_import_the_trainer():
    import subprocess
    import sys

    code = "import sys, asr.experiment, asr.checkpoint; print(sorted(m for m in sys.modules if m.startswith('asr.train')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
