import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError, audio_info, load_audio


def _tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    "suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")]
)
def test_load_audio_formats(tmp_path: Path, suffix: str, subtype: str):
    path = tmp_path / f"a{suffix}"
    tone = _tone(440, 16000, 0.5)
    sf.write(path, tone, 16000, subtype=subtype)
    wave, rate = load_audio(path)
    assert rate == 16000
    assert wave.dtype == torch.float32 and wave.shape == (8000,)
    if subtype == "PCM_16":  # lossless: equal up to 16-bit quantisation
        assert torch.allclose(wave, torch.from_numpy(tone), atol=1 / 32768 + 1e-6)
    else:  # lossy: same energy
        assert wave.pow(2).mean().item() == pytest.approx(0.125, rel=0.1)


def test_stereo_is_mixed_to_mono(tmp_path: Path):
    left, right = np.full(100, 0.5, np.float32), np.full(100, -0.25, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    wave, rate = load_audio(tmp_path / "s.wav")
    assert rate == 8000 and wave.shape == (100,)
    assert torch.allclose(wave, torch.full((100,), 0.125))


def test_resample_keeps_pitch_and_length(tmp_path: Path):
    sf.write(tmp_path / "a.flac", _tone(1000, 8000, 1.0), 8000)
    wave, rate = load_audio(tmp_path / "a.flac", sample_rate=16000)
    assert rate == 16000 and wave.shape == (16000,)
    spectrum = torch.fft.rfft(wave).abs()  # 1 Hz bins over 1 s
    assert spectrum.argmax().item() == 1000


def test_same_rate_is_not_resampled(tmp_path: Path):
    tone = _tone(300, 16000, 0.1)
    sf.write(tmp_path / "a.wav", tone, 16000, subtype="FLOAT")
    wave, rate = load_audio(tmp_path / "a.wav", sample_rate=16000)
    assert rate == 16000 and torch.equal(wave, torch.from_numpy(tone))


def test_audio_info(tmp_path: Path):
    sf.write(tmp_path / "a.flac", np.zeros((1234, 2), np.float32), 22050)
    assert audio_info(tmp_path / "a.flac") == (1234, 22050, 2)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_missing_and_unreadable_files_name_the_file(tmp_path: Path, reader):
    missing = tmp_path / "missing.flac"
    with pytest.raises(AudioError, match=re.escape(f"{missing}: file not found")):
        reader(missing)
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match=re.escape(f"{garbage}: cannot")):
        reader(garbage)
    with pytest.raises(AudioError, match="not a file"):
        reader(tmp_path)
    assert issubclass(AudioError, ValueError)


def test_truncated_flac_fails_to_load(tmp_path: Path):
    path = tmp_path / "cut.flac"
    sf.write(path, _tone(440, 16000, 2.0), 16000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match=re.escape(f"{path}: cannot decode")):
        load_audio(path)
