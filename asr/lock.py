"""Folder locks: one process at a time writes a folder (an experiment, a decode's output).

A lock file is held with ``flock`` for the whole run, and names its holder (pid, host, start
time). The kernel releases a flock when its process dies, however it dies, so a lock left by a
killed run is simply taken over (the leftover holder line says whose it was). The file is emptied
on a clean exit and never deleted: deleting it would let two processes lock two different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from asr import files


class FolderBusy(RuntimeError):
    """Another live process holds the lock of this folder."""


def _holder() -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return f"pid {os.getpid()} on host {socket.gethostname()} since {started}"


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # no O_TRUNC: the holder's line stays
    except OSError as err:
        files.raise_fixable(err, path)
        raise


def _write_holder(fd: int, path: Path) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_holder() + "\n").encode(), 0)
        os.fsync(fd)
    except OSError as err:  # a full disk: one line, and the lock is released on the way out
        files.raise_fixable(err, path)
        raise


@contextlib.contextmanager
def folder_lock(
    path: str | Path, folder: str | Path, hint: str, console: Console | None = None, busy: type[Exception] = FolderBusy
) -> Iterator[None]:
    """Hold the lock file ``path`` (of ``folder``) for the duration of the block, or raise
    ``busy`` ("FOLDER is in use by pid N on host H since T; HINT"), changing nothing, when
    another live process holds it."""
    path = Path(path)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise busy(f"{folder} is in use by {holder}; {hint}") from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous and console is not None:
            console.print(f"[yellow]taking over the lock of {folder} from {previous}, which is no longer running[/yellow]")
        _write_holder(fd, path)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean exit leaves no holder behind
    finally:
        os.close(fd)  # releases the flock
