"""A tiny random experiment on disk, for tests and the README's doctest (see /conftest.py).

The same recipe as the ``random_experiment`` fixture of tests/conftest.py: a tokenizer trained on
``texts``, and checkpoints/last.pt of a tiny random model (16 kHz, 20 mels) whose outputs are
peaked and rarely <eos>, so that searches give hypotheses with words in them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def make_random_experiment(root: Path, texts: list[str], decoder_layers: int = 1) -> Path:
    from asr.config import DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
    from asr.data.manifest import Utterance, write_manifest
    from asr.checkpoint import model_state
    from asr.model import ASRModel
    from asr.text.tokenizer import SOS_EOS_ID, train_tokenizer

    manifest = root / "text.jsonl"
    write_manifest([Utterance(f"s-1-{i}", "unused.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(texts)], manifest)
    exp = root / "exp"
    tokenizer = train_tokenizer([manifest], exp / "tokenizer", vocab_size=24)
    torch.manual_seed(0)
    config = ExperimentConfig(
        features=FeatureConfig(n_mels=20),
        model=ModelConfig(
            d_model=32,
            encoder=EncoderConfig(layers=2, heads=2, ff_dim=64, conv_channels=8),
            decoder=DecoderConfig(layers=decoder_layers, heads=2, ff_dim=64),
        ),
    )
    model = ASRModel(config, tokenizer.vocab_size).eval()
    with torch.no_grad():
        model.decoder.output.weight.mul_(3.0)
        model.decoder.output.bias[SOS_EOS_ID] -= 3.0
        model.ctc.weight.mul_(4.0)
    (exp / "checkpoints").mkdir(parents=True)
    torch.save(model_state(model), exp / "checkpoints" / "last.pt")
    return exp


def speechlike_file(path: Path, seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> Path:
    """A WAV of a few tones with a syllable-rate envelope: something for a random model to decode."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 540.0, 1300.0))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    sf.write(path, (0.07 * envelope * wave).astype(np.float32), rate)
    return path
