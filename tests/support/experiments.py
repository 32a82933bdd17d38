"""A tiny random experiment on disk, for tests and the README's doctest (see /conftest.py).

The tests' one tiny-model builder (``tiny_model``), and the random experiment made from it (the
``random_experiment`` fixture of tests/conftest.py): a tokenizer trained on ``texts``, and
checkpoints/last.pt of a tiny random model (16 kHz, 20 mels) whose outputs are peaked and rarely
<eos>, so that searches give hypotheses with words in them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def tiny_model(
    vocab_size: int,
    *,
    seed: int = 0,
    peaked: bool = True,
    eos_bias: float = 0.0,
    spec_augment: bool = True,
    decoder_layers: int = 2,
    **model_changes,
):
    """A tiny random ASRModel (16 kHz, 20 mels, d_model 32, 2 encoder blocks), in eval mode: the
    tests' one model builder (the ``tiny_model`` fixture of tests/conftest.py).

    ``peaked`` scales up the decoder's output layer (x3) and the CTC head (x4), so that a random
    model's distributions are peaked: searches then make clear choices, and hypotheses that must
    agree are not decided by near-ties. ``eos_bias`` is added to the decoder's <eos> logit.
    Other keyword arguments replace ModelConfig fields (ctc_weight, label_smoothing, ...)."""
    from asr.config import AugmentConfig, DecoderConfig, EncoderConfig, ExperimentConfig, FeatureConfig, ModelConfig
    from asr.model import ASRModel
    from asr.text.tokenizer import SOS_EOS_ID

    torch.manual_seed(seed)
    config = ExperimentConfig(
        features=FeatureConfig(n_mels=20),
        augment=AugmentConfig(spec_augment=spec_augment),
        model=ModelConfig(
            d_model=32,
            encoder=EncoderConfig(layers=2, heads=2, ff_dim=64, conv_channels=8),
            decoder=DecoderConfig(layers=decoder_layers, heads=2, ff_dim=64),
            **model_changes,
        ),
    )
    model = ASRModel(config, vocab_size).eval()
    with torch.no_grad():
        if peaked:
            model.decoder.output.weight.mul_(3.0)
            model.ctc.weight.mul_(4.0)
        model.decoder.output.bias[SOS_EOS_ID] += eos_bias
    return model


def make_random_experiment(root: Path, texts: list[str], **model_options):
    """exp/ under ``root`` with a tokenizer trained on ``texts`` and checkpoints/last.pt of a
    tiny random model that rarely says <eos>. Returns (exp_dir, model)."""
    from asr.checkpoint import model_state
    from asr.data.manifest import Utterance, manifest_texts, write_manifest
    from asr.text.tokenizer import train_tokenizer

    manifest = root / "text.jsonl"
    write_manifest([Utterance(f"s-1-{i}", "unused.wav", 1.0, 16000, "s", "1", t) for i, t in enumerate(texts)], manifest)
    exp = root / "exp"
    tokenizer = train_tokenizer(manifest_texts([manifest]), exp / "tokenizer", vocab_size=24)
    model = tiny_model(tokenizer.vocab_size, eos_bias=-3.0, **model_options)
    (exp / "checkpoints").mkdir(parents=True)
    torch.save(model_state(model), exp / "checkpoints" / "last.pt")
    return exp, model


def speechlike_file(path: Path, seconds: float = 2.0, rate: int = 16000, seed: int = 0) -> Path:
    """A WAV of a few tones with a syllable-rate envelope: something for a random model to decode."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220.0, 540.0, 1300.0))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    sf.write(path, (0.07 * envelope * wave).astype(np.float32), rate)
    return path
