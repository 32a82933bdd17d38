"""A few dozen short utterances (tones, random words) and a tokenizer: enough to run training
steps quickly; nothing here is meant to be learnable."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from asr.data.librispeech import prepare_librispeech
from librispeech_tree import make_librispeech_tree
from asr.text.tokenizer import train_tokenizer

WORDS = "ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIET KILO LIMA".split()

@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy")
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
    train_tokenizer([root / "manifests" / "train.jsonl"], tokenizer, vocab_size=40)
    return {"manifest": root / "manifests" / "train.jsonl", "tokenizer": tokenizer}
