"""The longest utterance a model was trained on, stored in the experiment (``durations.json``).

A model decodes worst on inputs longer than anything it saw in training (it loops or stops
early), so transcription caps its segments at this length (:mod:`asr.vad`).
"""

from __future__ import annotations

import json
from pathlib import Path

from asr.config import ExperimentConfig
from asr.data.manifest import read_manifest
from asr.files import write_json

DURATIONS = "durations.json"  # in the experiment: {"train_max_seconds": ...}


def training_max_seconds(exp_dir: str | Path, config: ExperimentConfig) -> float:
    """The longest utterance the model was trained on: from ``exp/durations.json`` (written
    when training starts), else from the training manifest named in the config if it is still
    there, else the config's ``data.max_duration`` (the longest training would accept)."""
    stats = Path(exp_dir) / DURATIONS
    if stats.is_file():
        return float(json.loads(stats.read_text())["train_max_seconds"])
    manifest = Path(config.data.train_manifest) if config.data.train_manifest else None
    if manifest is not None and manifest.is_file():
        durations = [u.duration for u in read_manifest(manifest) if u.duration <= config.data.max_duration]
        if durations:
            return max(durations)
    return config.data.max_duration


def write_training_durations(manifest: str | Path, max_duration: float, exp_dir: str | Path) -> None:
    """Record the longest utterance training will see (``data.max_duration`` leaves longer out)."""
    durations = [u.duration for u in read_manifest(manifest) if u.duration <= max_duration]
    write_json(Path(exp_dir) / DURATIONS, {"train_max_seconds": max(durations, default=max_duration)})
