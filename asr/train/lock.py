"""The experiment lock: one `asr train` at a time per experiment folder (``exp/.lock``, an
:func:`asr.lock.folder_lock`)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console

from asr.lock import FolderBusy, folder_lock
from asr.train.errors import TrainingError


class ExperimentBusy(FolderBusy, TrainingError):
    """Another process is training in this experiment folder."""


def experiment_lock(path: str | Path, console: Console | None = None) -> AbstractContextManager[None]:
    """Hold the lock file ``path`` (``exp/.lock``) while training, or raise ExperimentBusy
    (changing nothing) when another live process holds it."""
    path = Path(path)
    return folder_lock(path, path.parent, "wait for it to finish or train into another --exp", console, ExperimentBusy)
