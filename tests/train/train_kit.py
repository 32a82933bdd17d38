"""Shared values of the training tests: the tiny model's overrides and the toy corpus's
config. (A module of its own, not conftest.py: ``from conftest import`` can find another
folder's conftest when several test folders run together.)"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL = [
    "model.d_model=32",
    "model.encoder.layers=1",
    "model.encoder.heads=2",
    "model.encoder.ff_dim=64",
    "model.encoder.conv_channels=4",
    "model.decoder.layers=1",
    "model.decoder.heads=2",
    "model.decoder.ff_dim=64",
    "features.n_mels=20",
]


def toy_overrides(corpus: dict[str, Path], *extra: str) -> list[str]:
    return [
        f"data.train_manifest={corpus['manifest']}",
        f"data.tokenizer={corpus['tokenizer']}",
        "data.max_batch_seconds=4",
        "data.num_workers=0",
        "data.bucket_size=8",
        "train.warmup_steps=5",
        "train.log_every=1",
        *TINY_MODEL,
        *extra,
    ]
