import errno
import json
import os

import pytest

from asr import files


def test_write_text_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "out.txt"
    files.write_text(target, "first\n")
    files.write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert list(target.parent.iterdir()) == [target]


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    files.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_disk_full_is_named(tmp_path):
    target = tmp_path / "cmvn.json"
    with pytest.raises(files.DiskFullError, match="cmvn.json: disk full"):
        with files.atomic_path(target) as tmp:
            tmp.write_text("x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert not any(tmp_path.iterdir())


def test_json_refuses_infinity(tmp_path):
    with pytest.raises(ValueError):
        files.write_json(tmp_path / "t.json", {"rtf": float("inf")})
    assert not any(tmp_path.iterdir())


def test_sweep_removes_only_temp_files(tmp_path):
    (tmp_path / "sub").mkdir()
    keep = tmp_path / "sub" / "last.pt"
    keep.write_text("k")
    leftover = tmp_path / "sub" / f"{files.TEMP_PREFIX}123-last.pt"
    leftover.write_text("junk")
    assert files.sweep_temp_files(tmp_path) == [leftover]
    assert keep.exists() and not leftover.exists()
