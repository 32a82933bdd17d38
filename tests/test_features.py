import math

import pytest
import soundfile as sf
import torch
import torchaudio

from asr.config import FeatureConfig
from asr.data.manifest import Utterance
from asr.features import LOG_OFFSET, LogMel

CONFIG = FeatureConfig()  # 16 kHz, 80 mels, 25 ms window (400), 10 ms hop (160)


def reference_logmel(wave: torch.Tensor) -> torch.Tensor:
    """Direct torchaudio computation for one unpadded waveform (S,) -> (T, 80)."""
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=400, win_length=400, hop_length=160, n_mels=80, center=False
    )
    return torch.log(mel(wave) + LOG_OFFSET).T


def random_waves(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise plus a tone, zero-padded: (B, S), (B,)."""
    waves = torch.zeros(len(lengths), max(lengths))
    for row, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        waves[row, :n] = 0.1 * torch.randn(n) + 0.3 * torch.sin(2 * math.pi * (200 + 100 * row) * t)
    return waves, torch.tensor(lengths)


def write_corpus(directory, lengths: list[int]) -> list[Utterance]:
    utterances = []
    for i, n in enumerate(lengths):
        wave, _ = random_waves([n])
        wave = wave[0] * (0.5 + 0.5 * i / len(lengths))  # vary loudness across files
        path = directory / f"utt{i}.wav"
        sf.write(path, wave.numpy(), 16000)
        utterances.append(Utterance(f"utt{i}", str(path), n / 16000, 16000, "spk", "ch", "HELLO"))
    return utterances


def read_frames(utterances: list[Utterance]) -> torch.Tensor:
    """Every frame of every utterance, computed directly and concatenated: (sum T, 80)."""
    waves = [torch.from_numpy(sf.read(u.audio, dtype="float32")[0]) for u in utterances]
    return torch.cat([reference_logmel(wave) for wave in waves])


def test_logmel_matches_torchaudio_and_zeroes_padding():
    lengths = [16000, 9000, 4321]
    waves, lens = random_waves(lengths)
    feats, feat_lengths = LogMel(CONFIG)(waves, lens)
    assert feats.shape == (3, (16000 - 400) // 160 + 1, 80)
    assert feats.dtype == torch.float32
    for row, n in enumerate(lengths):
        expected = reference_logmel(waves[row, :n])
        assert feat_lengths[row] == expected.size(0)
        torch.testing.assert_close(feats[row, : feat_lengths[row]], expected, atol=1e-5, rtol=1e-5)
        assert (feats[row, feat_lengths[row] :] == 0).all()


@pytest.mark.parametrize("samples", [0, 1, 399, 400, 401, 559, 560, 561, 16000, 16001])
def test_feature_lengths_follow_formula(samples):
    waves = torch.randn(2, 16100)
    _, feat_lengths = LogMel(CONFIG)(waves, torch.tensor([samples, 16100]))
    assert feat_lengths[0] == max(0, (samples - 400) // 160 + 1)
    if samples >= 400:  # and it is the number of frames torchaudio itself produces
        assert feat_lengths[0] == reference_logmel(waves[0, :samples]).size(0)


def test_input_shorter_than_one_window():
    feats, feat_lengths = LogMel(CONFIG)(torch.randn(2, 100), torch.tensor([100, 50]))
    assert feats.shape == (2, 1, 80)
    assert feat_lengths.tolist() == [0, 0]
    assert (feats == 0).all()


def test_utterance_alone_equals_utterance_padded_in_batch():
    logmel = LogMel(CONFIG)
    waves, lens = random_waves([20000, 7000, 12345])
    batch_feats, batch_lengths = logmel(waves, lens)
    for row in range(3):
        alone, alone_lengths = logmel(waves[row : row + 1, : lens[row]], lens[row : row + 1])
        assert alone_lengths[0] == batch_lengths[row]
        in_batch = batch_feats[row, : batch_lengths[row]]
        torch.testing.assert_close(in_batch, alone[0], atol=1e-6, rtol=0)


def test_logmel_stays_float32_under_autocast():
    waves, lens = random_waves([8000, 6000])
    reference, _ = LogMel(CONFIG)(waves, lens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats, _ = LogMel(CONFIG)(waves, lens)
    assert feats.dtype == torch.float32
    torch.testing.assert_close(feats, reference)
