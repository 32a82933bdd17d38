"""The one progress-bar layout for counted work (files, utterances): description, bar, done/total, ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn


def counting_progress(console: Console | None = None, *extra: ProgressColumn, transient: bool = False) -> Progress:
    """A rich Progress showing each task's description, a bar, M/N, any ``extra`` columns, ETA."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
