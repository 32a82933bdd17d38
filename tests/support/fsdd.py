"""Where the tests find the FSDD recordings: $ASR_FSDD, else ../shared/data/fsdd/recordings next to
the repository (where CI has them). Missing data is a failure, not a skip: these tests are the only
checks on real speech."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def fsdd_recordings() -> Path:
    path = Path(os.environ.get("ASR_FSDD") or REPO.parent / "shared" / "data" / "fsdd" / "recordings")
    if not any(path.glob("*_jackson_*.wav")):
        pytest.fail(
            f"FSDD recordings not found in {path}: set ASR_FSDD to the 'recordings' folder of a clone "
            "of https://github.com/Jakobovski/free-spoken-digit-dataset"
        )
    return path
