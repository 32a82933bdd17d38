"""The experiment log, ``log.jsonl``: one JSON object per line (train, valid, nonfinite, start, done).

Lines are appended with one write each. On resume the log is cut back to the checkpoint's step:
what an interrupted run logged after its last checkpoint is recomputed (bit-identically), so every
step and every validation is recorded once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from asr import files


def _finite(value: object) -> object:
    """Non-finite floats become null: the log stays strict JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _line(record: dict) -> str:
    return json.dumps({k: _finite(v) for k, v in record.items()}, allow_nan=False)


class ExperimentLog:
    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled  # only rank 0 writes

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(_line(record) + "\n")

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

    def cut_after(self, step: int) -> None:
        """Keep only records of steps <= ``step`` (and records without a step)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in self.records() if r.get("step", 0) <= step]
        files.write_lines(self.path, [_line(r) for r in kept])

    def set_aside(self) -> None:
        """Move the log of a run that died before its first checkpoint out of the way."""
        if self.enabled and self.path.is_file():
            self.path.replace(self.path.with_name(f"{self.path.name}.{int(time.time())}"))
