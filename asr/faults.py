"""Named points where a test can make the process kill itself (SIGKILL), to check that every
file survives a crash there and that a resumed run is exact.

``ASR_KILL_AT=name`` kills the process the first time it reaches ``kill_point(name)``;
``ASR_KILL_AT=name:N`` the N-th time. Points: ``step`` (after an update, before its hooks),
``valid`` (inside a validation, after its first batch), ``best`` (between saving a best checkpoint and its index),
``checkpoint`` (inside a checkpoint write, before the rename), ``average`` (while averaging).
Without the variable, ``kill_point`` does nothing.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "ASR_KILL_AT"
_hits: Counter[str] = Counter()


def kill_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
