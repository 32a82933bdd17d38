"""The toy corpus of the training tests: a few dozen short noise utterances with random words and
a tokenizer, enough to run training steps quickly (nothing here is meant to be learnable), and
the overrides that train a tiny model on it. Imported as ``toy`` (not from conftest, whose module
name other test folders share)."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from asr.data.librispeech import prepare_librispeech
from asr.data.manifest import manifest_texts
from asr.text.tokenizer import train_tokenizer
from librispeech_tree import make_librispeech_tree

WORDS = "ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIET KILO LIMA".split()

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


def make_toy_corpus(root: Path) -> dict[str, Path]:
    rng = random.Random(0)
    generator = torch.Generator().manual_seed(0)
    utterances = []
    for n in range(36):
        seconds = rng.uniform(0.4, 1.2)
        wave = 0.1 * torch.randn(int(seconds * 16000), generator=generator)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
        utterances.append((str(100 + n % 3), "7", text, wave))
    make_librispeech_tree(root, "train", utterances)
    prepare_librispeech(root, ["train"], root / "manifests")
    tokenizer = root / "tokenizer"
    train_tokenizer(manifest_texts([root / "manifests" / "train.jsonl"]), tokenizer, vocab_size=40)
    return {"manifest": root / "manifests" / "train.jsonl", "tokenizer": tokenizer}


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
