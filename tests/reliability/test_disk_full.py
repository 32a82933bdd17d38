"""A disk that fills up in the middle of a command, on a real (tmpfs) file system: one line that
says so and names the file, exit status 2, no temporary file left, and the next run, once there
is space again, succeeds. (Disk full before a command starts: test_faults.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr import files
from asr.text.tokenizer import NORMALIZER_FILE
from asr.train.log import ExperimentLog
from reliability_kit import TINY_MODEL, asr, assert_ends_in_one_line_error, assert_one_line_error, snapshot, temp_leftovers

TINY = [a for o in TINY_MODEL for a in ("--set", o)]


def _fill_before(monkeypatch, owner, name: str, fill) -> None:
    """Fill the disk just before the first call of ``owner.name``."""
    original = getattr(owner, name)

    def filled_first(*args, **kwargs):
        fill()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, filled_first)


@pytest.mark.parametrize("moment, file", [("lock", ".lock"), ("first log line", "log.jsonl"), ("checkpoint", "checkpoints/last.pt")])
def test_a_disk_filling_up_during_training_is_one_line(world, filling_disk, monkeypatch, moment, file):
    disk, fill = filling_disk
    exp = disk / "exp"
    if moment == "lock":
        fill()
    elif moment == "first log line":
        _fill_before(monkeypatch, ExperimentLog, "write", fill)
    else:
        _fill_before(monkeypatch, torch, "save", fill)
    args = ["train", "--config", world.config, "--exp", exp, *TINY]
    assert_ends_in_one_line_error(asr(*args), f"{exp / file}: disk full")
    assert temp_leftovers(disk) == []
    assert not (exp / "checkpoints" / "last.pt").exists()

    monkeypatch.undo()
    (disk / "filler").unlink()
    again = asr(*args)
    assert again.exit_code == 0, again.stderr
    assert torch.load(exp / "checkpoints" / "last.pt", weights_only=True)["position"]["step"] == 1


@pytest.mark.parametrize("earlier", [False, True])
def test_a_disk_filling_up_at_normalizer_txt_leaves_no_half_tokenizer(world, filling_disk, monkeypatch, earlier):
    disk, fill = filling_disk
    out = disk / "tokenizer"
    args = ["tokenizer", "train", "--manifest", world.train_manifest, "--vocab-size", "20", "--out", out]
    if earlier:
        assert asr(*args).exit_code == 0  # a librispeech tokenizer, to be replaced by a unicode one
    before = snapshot(out)
    original = files.write_text

    def fill_at_normalizer(path, text):
        if Path(path).name == NORMALIZER_FILE:
            fill()
        original(path, text)

    monkeypatch.setattr(files, "write_text", fill_at_normalizer)
    assert_one_line_error(asr(*args, "--normalizer", "unicode"), f"{out / NORMALIZER_FILE}: disk full")
    assert snapshot(out) == before  # the earlier tokenizer whole, or still no folder
    assert temp_leftovers(disk) == []
