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


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # finished and reaped: no such process now


def test_sweep_dead_spares_live_writers(tmp_path):
    dead = tmp_path / f"{files.TEMP_PREFIX}{_dead_pid()}-hyp.txt"
    live = tmp_path / f"{files.TEMP_PREFIX}{os.getppid()}-hyp.txt"  # our parent is running
    folder = tmp_path / f"{files.TEMP_PREFIX}old-{_dead_pid()}-decode"
    for path in (dead, live):
        path.write_text("x")
    folder.mkdir()
    (folder / "hyp.txt").write_text("x")
    assert sorted(files.sweep_dead(tmp_path)) == sorted([dead, folder])
    assert live.exists() and not dead.exists() and not folder.exists()


def test_replaced_dir_swaps_the_whole_folder_or_nothing(tmp_path):
    out = tmp_path / "decode"
    with files.replaced_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
        (tmp / "b.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with files.replaced_dir(out) as tmp:
            (tmp / "a.txt").write_text("second")
            raise RuntimeError("crash")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]
    assert (out / "a.txt").read_text() == "first"
    with files.replaced_dir(out) as tmp:
        (tmp / "c.txt").write_text("third")
    assert [p.name for p in out.iterdir()] == ["c.txt"]  # nothing of the first run is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decode"]


@pytest.mark.parametrize("kind", ["file", "under a file", "directory"])
def test_output_path_errors_name_the_path(tmp_path, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep")
    target = {"file": blocker, "under a file": blocker / "x.txt", "directory": tmp_path}[kind]
    if kind == "file":
        with pytest.raises(files.OutputPathError, match="it is a file"):
            files.check_writable_dir(target)
    else:
        with pytest.raises(files.OutputPathError, match=str(target)):
            files.write_text(target, "x")
    assert blocker.read_text() == "keep"


def test_check_writable_dir_creates_nothing(tmp_path):
    assert files.check_writable_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


def test_read_text_lines_drops_a_bom_and_splits_only_on_newlines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffa\tx\u2028y\r\nb\n".encode())
    assert files.read_text_lines(path) == ["a\tx\u2028y", "b"]
    path.write_bytes(b"ok\n\xff\n")
    with pytest.raises(files.InputFileError, match=r"t\.txt:2: not UTF-8"):
        files.read_text_lines(path)
