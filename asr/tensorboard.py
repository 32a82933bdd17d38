"""An optional TensorBoard view of ``log.jsonl`` (``train.tensorboard: true``; the
``tensorboard`` extra): every numeric field of a logged record becomes a scalar
``<event>/<field>`` at the record's step, in ``exp/tensorboard/``.

TensorBoard's event files are append-only streams written by its own writer, the one exception
to writing every file through :mod:`asr.files`; ``log.jsonl`` stays the record of the run.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = "tensorboard"


class TensorBoardError(RuntimeError):
    """The tensorboard package is missing."""


class TensorBoardMirror:
    """Called with each log record (a dict with ``event`` and ``step``)."""

    def __init__(self, exp_dir: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise TensorBoardError(
                "train.tensorboard: true needs the tensorboard package: pip install 'asr[tensorboard]' "
                "(or set train.tensorboard: false)"
            ) from None
        self.writer = SummaryWriter(str(Path(exp_dir) / DIRECTORY))

    def __call__(self, record: dict) -> None:
        step, event = record.get("step"), record.get("event", "log")
        if not isinstance(step, int):
            return
        for key, value in record.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{event}/{key}", value, step)
        self.writer.flush()
