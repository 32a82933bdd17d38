"""asr: a small attention encoder-decoder speech recognition toolkit.

``asr.load(exp_dir)`` gives a :class:`asr.api.Recognizer` (imported on first use, so that
``import asr`` stays light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from asr.api import Recognizer


def load(path: Any, device: Any = "cpu", checkpoint: Any = None) -> Recognizer:
    """Load an experiment directory, or a checkpoint inside one: see :func:`asr.api.load`."""
    from asr.api import load as _load

    return _load(path, device, checkpoint)
