import math

import pytest
import soundfile as sf
import torch

from asr.config import AugmentConfig
from asr.data.dataset import Batch, SpeechDataset, collate
from asr.data.manifest import Utterance, write_manifest
from asr.data.manifest import manifest_texts
from asr.noise import Corruptor
from asr.text.tokenizer import BLANK_ID, train_tokenizer

TEXTS = [
    "THE CAT SAT ON THE MAT",
    "A DOG RAN IN THE PARK",
    "SHE SELLS SEA SHELLS BY THE SEA SHORE",
    "HELLO WORLD",
    "SPEECH RECOGNITION IS FUN",
    "ONE TWO THREE FOUR FIVE",
]


def tone(seconds: float, rate: int, hz: float) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * math.pi * hz * t)


@pytest.fixture
def corpus(tmp_path):
    """Six WAVs (one stored at 8 kHz), a manifest and a tokenizer trained on it."""
    utterances = []
    for i, text in enumerate(TEXTS):
        rate = 8000 if i == 3 else 16000
        seconds = 0.3 + 0.1 * i
        path = tmp_path / f"u{i}.wav"
        sf.write(path, tone(seconds, rate, 300 + 50 * i).numpy(), rate)
        utterances.append(Utterance(f"u{i}", str(path), seconds, rate, "s", "c", text))
    write_manifest(utterances, tmp_path / "train.jsonl")
    tokenizer = train_tokenizer(manifest_texts([tmp_path / "train.jsonl"]), tmp_path / "tok", vocab_size=40)
    return utterances, tokenizer


def test_item_has_wave_and_tokens(corpus):
    utterances, tokenizer = corpus
    dataset = SpeechDataset(utterances, tokenizer, sample_rate=16000)
    assert len(dataset) == 6
    item = dataset[2]
    assert item["id"] == "u2"
    assert item["wave"].dtype == torch.float32 and item["wave"].shape == (int(0.5 * 16000),)
    torch.testing.assert_close(item["wave"], tone(0.5, 16000, 400), atol=1e-4, rtol=0)  # 16-bit WAV
    assert item["tokens"].dtype == torch.long
    assert item["tokens"].tolist() == tokenizer.encode(TEXTS[2])
    assert tokenizer.decode(item["tokens"].tolist()) == TEXTS[2]


def test_other_sample_rates_are_resampled(corpus):
    utterances, tokenizer = corpus
    wave = SpeechDataset(utterances, tokenizer, sample_rate=16000)[3]["wave"]  # stored at 8 kHz
    assert wave.numel() == int(0.6 * 16000)
    spectrum = torch.fft.rfft(wave).abs()
    assert abs(spectrum.argmax().item() * 16000 / wave.numel() - 450) < 5  # the tone is intact


def test_speed_perturbation_is_deterministic_per_seed_and_epoch(corpus):
    utterances, tokenizer = corpus
    speeds = (0.9, 1.0, 1.1)
    dataset = SpeechDataset(utterances, tokenizer, 16000, speeds=speeds, seed=3)
    twin = SpeechDataset(utterances, tokenizer, 16000, speeds=speeds, seed=3)
    for index in range(6):
        factor = dataset.speed(index)
        assert factor in speeds
        wave = dataset[index]["wave"]
        assert abs(wave.numel() - int(utterances[index].duration * 16000) / factor) <= 1
        assert torch.equal(wave, twin[index]["wave"])
    by_epoch = set()
    for epoch in range(4):
        dataset.set_epoch(epoch)
        by_epoch.add(tuple(dataset.speed(i) for i in range(6)))
    assert len(by_epoch) > 1
    unperturbed = SpeechDataset(utterances, tokenizer, 16000)
    assert [unperturbed.speed(i) for i in range(6)] == [1.0] * 6


def test_noise_is_added_per_seed_epoch_and_index_after_speed_perturbation(corpus):
    utterances, tokenizer = corpus
    config = AugmentConfig(noise_prob=1.0, noise_kinds=("white", "babble"), reverb_prob=0.5)
    audio = [u.audio for u in utterances]
    make = lambda corrupt: SpeechDataset(utterances, tokenizer, 16000, speeds=(0.9, 1.1), seed=3, corrupt=corrupt)  # noqa: E731
    clean, noisy, twin = make(None), make(Corruptor(config, 16000, audio)), make(Corruptor(config, 16000, audio))
    for index in range(6):
        wave, plain = noisy[index]["wave"], clean[index]["wave"]
        assert wave.shape == plain.shape and not torch.allclose(wave, plain, atol=1e-3)
        assert torch.equal(wave, twin[index]["wave"])
        assert torch.equal(wave, noisy.corrupt.apply(plain, noisy.corrupt.plan(3, 0, index)))
    noisy.set_epoch(1)
    assert not torch.equal(noisy[0]["wave"], twin[0]["wave"])
    off = make(Corruptor(AugmentConfig(), 16000, audio))  # probabilities 0: not even called
    assert off.corrupt is None and all(torch.equal(off[i]["wave"], clean[i]["wave"]) for i in range(6))


def test_collate_pads_and_records_lengths(corpus):
    utterances, tokenizer = corpus
    dataset = SpeechDataset(utterances, tokenizer, sample_rate=16000)
    items = [dataset[i] for i in (0, 4, 1)]
    batch = collate(items)
    assert isinstance(batch, Batch) and len(batch) == 3
    assert batch.ids == ["u0", "u4", "u1"]
    assert batch.waves.shape == (3, max(i["wave"].numel() for i in items))
    assert batch.tokens.shape == (3, max(i["tokens"].numel() for i in items))
    for row, item in enumerate(items):
        n, u = item["wave"].numel(), item["tokens"].numel()
        assert batch.wave_lengths[row] == n and batch.token_lengths[row] == u
        assert torch.equal(batch.waves[row, :n], item["wave"]) and (batch.waves[row, n:] == 0).all()
        assert torch.equal(batch.tokens[row, :u], item["tokens"])
        assert (batch.tokens[row, u:] == BLANK_ID).all()
    assert batch.wave_lengths.dtype == batch.token_lengths.dtype == batch.tokens.dtype == torch.long


def test_batch_moves_every_tensor(corpus):
    utterances, tokenizer = corpus
    dataset = SpeechDataset(utterances, tokenizer, sample_rate=16000)
    batch = collate([dataset[0], dataset[1]])
    moved = batch.to("meta")
    assert moved.ids == batch.ids
    for name in ("waves", "wave_lengths", "tokens", "token_lengths"):
        assert getattr(moved, name).device.type == "meta"
        assert getattr(moved, name).shape == getattr(batch, name).shape
    if torch.cuda.is_available():
        pinned = batch.pin_memory()
        assert pinned.waves.is_pinned() and pinned.tokens.is_pinned()
        assert torch.equal(pinned.to("cuda").waves.cpu(), batch.waves)
