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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_PREFIX = ".asr-tmp-"


class DiskFullError(RuntimeError):
    """No space left while writing a file (a user can fix it by freeing space)."""


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The caller writes the temporary path however it likes (``torch.save``, a library's own
    ``save``, a copy). On any error the temporary file is removed and the target is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        if err.errno == errno.ENOSPC:
            raise DiskFullError(f"{path}: disk full; free some space and run again") from err
        raise
    except BaseException:
        _remove(tmp)
        raise


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
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
