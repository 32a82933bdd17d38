"""The experiment log, ``log.jsonl``: one JSON object per line (train, valid, nonfinite, start, done).

Lines are appended with one write each. Each checkpoint notes how many records the log held
when it was written; on resume the log is cut back to that many: what an interrupted run logged
after its last checkpoint is redone (bit-identically), so every step, every skipped update and
every validation is recorded once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

from asr import files


def _finite(value: object) -> object:
    """Non-finite floats become null: the log stays strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _line(record: dict) -> str:
    return json.dumps({k: _finite(v) for k, v in record.items()}, allow_nan=False)


class ExperimentLog:
    def __init__(self, path: str | Path, enabled: bool = True, mirror: Callable[[dict], None] | None = None):
        self.path = Path(path)
        self.enabled = enabled  # only rank 0 writes
        self.mirror = mirror  # also sent every record (asr.tensorboard)
        self.count = len(self.records()) if enabled else 0  # complete records in the file

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self._append(_line(record) + "\n")
        if self.mirror is not None:
            self.mirror(record)
        self.count += 1

    def _append(self, line: str) -> None:
        """Append one line, or nothing: a line cut short by a full disk is cut off again, so that
        the next one does not run on from it."""
        size = self.path.stat().st_size if self.path.is_file() else 0
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)
            files.raise_fixable(err, self.path)
            raise

    def records(self) -> list[dict]:
        """Every complete record (a line cut short by a kill is left out)."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def cut_to(self, count: int | None, step: int) -> None:
        """Keep the first ``count`` records (what a checkpoint saw); without a count (an older
        checkpoint), the records of steps <= ``step``."""
        if not self.enabled or not self.path.is_file():
            return
        records = self.records()
        kept = records[:count] if count is not None else [r for r in records if r.get("step", 0) <= step]
        files.write_lines(self.path, [_line(r) for r in kept])
        self.count = len(kept)

    def set_aside(self) -> None:
        """Move the log of a run that died before its first checkpoint out of the way."""
        if self.enabled and self.path.is_file():
            self.path.replace(self.path.with_name(f"{self.path.name}.{int(time.time())}"))
        self.count = 0
