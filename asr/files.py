"""Atomic file writes: every file the toolkit writes goes through here.

A file is written to a temporary name in its own directory, flushed to disk, then renamed over
the target. A crash or a full disk at any moment leaves either the previous file or the new one,
never a truncated one. Temporary names share one prefix so that leftovers of killed writes can be
swept (``sweep_temp_files``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

TEMP_PREFIX = ".asr-tmp-"


class DiskFullError(RuntimeError):
    """No space left while writing a file (a user can fix it by freeing space)."""


class OutputPathError(ValueError):
    """An output path that cannot be written: a directory, under a file, or read-only."""


class InputFileError(ValueError):
    """A text input file that is not UTF-8; the message names the file and line."""


def raise_fixable(err: OSError, path: Path) -> None:
    """Raise the one-line error for an OSError a user can fix while writing ``path`` (a full
    disk, a directory, a file in the way, no permission, read-only); return for any other."""
    if err.errno == errno.ENOSPC:
        raise DiskFullError(f"{path}: disk full; free some space and run again") from err
    if isinstance(err, (IsADirectoryError, NotADirectoryError, FileExistsError, PermissionError)) or err.errno == errno.EROFS:
        reason = {
            errno.EISDIR: "it is a directory", errno.ENOTDIR: "a parent is a file, not a directory",
            errno.EEXIST: "a parent is a file, not a directory", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
        }.get(err.errno, err.strerror)
        raise OutputPathError(f"{path}: cannot write ({reason}); choose another output path") from err


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The caller writes the temporary path however it likes (``torch.save``, a library's own
    ``save``, a copy). On any error the temporary file is removed and the target is untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: cannot write (it is a directory); choose another output path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise_fixable(err, path)
        raise
    tmp = _temp_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise_fixable(err, path)
        raise
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[BinaryIO]:
    """``atomic_path`` opened for binary writing. Give ``torch.save`` this file object, not a
    path: writing a path itself, torch reports a full disk as an opaque RuntimeError
    ("unexpected pos"); through a Python file the OSError (ENOSPC) comes through."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        yield f


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    """Write strict JSON (``NaN``/``Infinity`` are refused: they are not JSON)."""
    write_text(path, json.dumps(value, indent=indent, allow_nan=False) + "\n")


def write_lines(path: str | Path, lines: Iterator[str] | list[str]) -> None:
    """Write one line per item (each without its newline)."""
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")


def copy_file(src: str | Path, dst: str | Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def check_writable_dir(path: str | Path, target: str | Path | None = None) -> Path:
    """Prove that folder ``path`` could be created (if missing) and written, before long work
    whose results would go there; an OutputPathError names it (or ``target``, the output inside
    it) otherwise. Creates nothing."""
    path = Path(os.path.abspath(path))
    named = Path(target) if target is not None else path
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "it is a file, not a directory" if existing == named else "a parent is a file, not a directory"
        raise OutputPathError(f"{named}: cannot write ({where}); choose another output path")
    probe = _temp_name(existing / "write-probe")
    try:
        probe.write_bytes(b"")
    except OSError as err:
        raise_fixable(err, named)
        raise
    finally:
        _remove(probe)
    return path


def check_writable_file(path: str | Path) -> Path:
    """Fail now, naming ``path``, if a file could not be written (or a folder replaced) there."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: cannot write (it is a directory); choose another output path")
    check_writable_dir(path.parent, path)
    return path


def check_replaceable_dir(path: str | Path) -> Path:
    """Fail now, naming ``path``, if ``replaced_dir(path)`` could not put a folder there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: cannot write (it is a file, not a directory); choose another output path")
    check_writable_dir(path.parent, path)
    return path


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content, without a byte-order mark; not UTF-8 is an InputFileError."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(f"{path}:{line}: not UTF-8 text (byte {data[err.start]:#04x}); save it as UTF-8") from None


def read_text_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (BOM dropped, ``\n`` or ``\r\n`` endings, no other splits:
    JSON strings may hold U+2028)."""
    text = read_text(path)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


@contextlib.contextmanager
def replaced_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path`` whole.

    A folder of outputs (a decode) is never a mix of two runs: the new files are written aside,
    then the old folder is moved away and the new one renamed into place. On any error the
    temporary folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: cannot write (it is a file, not a directory); choose another output path")
    tmp = _temp_name(path)
    old = path.with_name(f"{TEMP_PREFIX}old-{os.getpid()}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_dead(path.parent, path.name)
        tmp.mkdir()
        with _named_as(tmp, path):
            yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise_fixable(err, path)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _named_as(tmp: Path, path: Path) -> Iterator[None]:
    """An error about a file written into the temporary folder ``tmp`` names it where it was
    going (``path``/name): the temporary folder is gone by the time the user reads it."""
    try:
        yield
    except (DiskFullError, OutputPathError) as err:
        raise type(err)(str(err).replace(str(tmp), str(path))) from err.__cause__


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) (as Ctrl-C raises KeyboardInterrupt), so
    that the clean-up of temporary files and folders runs; by default the process would die at
    once and leave them. Only the main thread can take signals: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep_dead(directory: str | Path, name: str = "") -> list[Path]:
    """Remove the temporary files and folders in ``directory`` (not below it) that processes no
    longer running left behind; with ``name``, only those for that target name. Safe while other
    processes write there: a live writer's temporary name holds its pid."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    swept = []
    for leftover in directory.glob(f"{TEMP_PREFIX}*-{name}" if name else f"{TEMP_PREFIX}*"):
        pid = leftover.name.removeprefix(TEMP_PREFIX).removeprefix("old-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else _remove(leftover)
            swept.append(leftover)
    return swept


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # ours: a write in progress (our own failed writes clean up after themselves)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temp_files(directory: str | Path) -> list[Path]:
    """Remove temporary files that killed writes left under ``directory``; return them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    swept = [p for p in directory.rglob(f"{TEMP_PREFIX}*") if p.is_file()]
    for p in swept:
        _remove(p)
    return swept


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _remove(path: Path) -> None:
    # Any OSError: failing to remove a temporary file (read-only or vanished folder) must not
    # hide the error that made us remove it.
    with contextlib.suppress(OSError):
        path.unlink()
