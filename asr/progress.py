"""Progress bars: one layout for counted work (files, utterances: description, bar, done/total,
ETA), and the training display built on the same columns (epoch, step, loss, lr, utt/s)."""

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


class TrainProgress:
    """The rich display of training: epoch, batches done/total, step, loss, lr, utterances/s, ETA."""

    def __init__(self, console: Console, enabled: bool = True):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("step {task.fields[step]}"),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TextColumn("lr {task.fields[lr]:.2e}"),
            TextColumn("{task.fields[utt_per_s]:.1f} utt/s"),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
        )
        self._task = None
        self._fields = {"epoch": 0, "step": 0, "loss": float("nan"), "lr": 0.0, "utt_per_s": 0.0}

    def __enter__(self) -> TrainProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start_epoch(self, epoch: int, total_batches: int, done_batches: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._fields["epoch"] = epoch + 1
        self._task = self._progress.add_task("train", total=total_batches, completed=done_batches, **self._fields)

    def advance(self, loss: float, lr: float | None = None, step: int | None = None, batches: int = 1) -> None:
        self._fields["loss"] = loss
        if lr is not None:
            self._fields["lr"] = lr
        if step is not None:
            self._fields["step"] = step
        self._progress.update(self._task, advance=batches, **self._fields)

    def update_rates(self, utterances_per_second: float) -> None:
        self._fields["utt_per_s"] = utterances_per_second
