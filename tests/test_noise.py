"""Waveform corruption (asr/noise.py): SNR of the mix, babble sources, impulse responses, seeding."""

from __future__ import annotations

import math

import pytest
import soundfile as sf
import torch

from asr.config import AugmentConfig, ConfigError, from_dict
from asr.noise import (
    Corruptor,
    NoiseSourceError,
    coloured_noise,
    generated_rir,
    mix_at_snr,
    reverberate,
)

RATE = 16000
FREQS = [300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0]  # one tone per training utterance


def tone(seconds: float, hz: float, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE)) / RATE
    return amplitude * torch.sin(2 * math.pi * hz * t)


def snr_db(clean: torch.Tensor, mixed: torch.Tensor) -> float:
    return 10 * math.log10(clean.double().pow(2).sum() / (mixed - clean).double().pow(2).sum())


@pytest.fixture
def tones(tmp_path) -> list[str]:
    """Six training 'utterances', each a tone of its own frequency (so babble sources show)."""
    paths = []
    for i, hz in enumerate(FREQS):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, tone(0.7 + 0.2 * i, hz).numpy(), RATE, subtype="FLOAT")
        paths.append(str(path))
    return paths


@pytest.fixture
def noise_dir(tmp_path):
    folder = tmp_path / "noises" / "sub"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(5)
    sf.write(folder / "hum.wav", (0.1 * torch.randn(3000, generator=generator)).numpy(), RATE, subtype="FLOAT")
    return tmp_path / "noises"


def corruptor(tones, **options) -> Corruptor:
    return Corruptor(AugmentConfig(**options), RATE, tones)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble", "file"])
def test_the_mix_has_the_drawn_snr(tones, noise_dir, kind):
    corrupt = corruptor(tones, noise_prob=1.0, noise_kinds=(kind,), noise_snr=(-5.0, 20.0), noise_dir=str(noise_dir))
    clean = tone(1.3, 440.0)
    drawn = []
    for index in range(6):
        plan = corrupt.plan(seed=3, epoch=0, index=index)
        assert plan.noise == kind and plan.rt60 == 0
        mixed = corrupt.apply(clean, plan)
        assert mixed.shape == clean.shape
        assert snr_db(clean, mixed) == pytest.approx(plan.snr_db, abs=1e-3)
        drawn.append(plan.snr_db)
    assert all(-5.0 <= s <= 20.0 for s in drawn) and len(set(drawn)) == 6


def test_mix_at_snr_leaves_silence_alone():
    silence = torch.zeros(800)
    assert torch.equal(mix_at_snr(silence, torch.randn(800), 0.0), silence)


@pytest.mark.parametrize("colour, alpha", [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_coloured_noise_has_its_spectral_slope(colour, alpha):
    noise = coloured_noise(2**16, colour, torch.Generator().manual_seed(0))
    assert noise.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=0.05)
    power = torch.fft.rfft(noise).abs().pow(2)
    freqs = torch.arange(power.numel(), dtype=torch.float64)
    band = (freqs >= 10) & (freqs <= 10000)  # log-log line fit of the periodogram
    x, y = freqs[band].log10(), power[band].double().log10()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).pow(2).sum()
    assert -slope.item() == pytest.approx(alpha, abs=0.1)


def _tone_energy(wave: torch.Tensor, hz: float) -> float:
    spectrum = torch.fft.rfft(wave).abs().pow(2)
    bin_ = round(hz * wave.numel() / RATE)
    return float(spectrum[bin_ - 2 : bin_ + 3].sum() / spectrum.sum())


def test_babble_is_made_of_other_utterances(tones):
    corrupt = corruptor(tones, noise_prob=1.0, noise_kinds=("babble",), babble_talkers=(2, 3))
    for index in range(6):
        plan = corrupt.plan(seed=1, epoch=2, index=index)
        used = {i for talker in plan.sources for i in talker}
        assert 2 <= len(plan.sources) <= 3 and index not in used and used <= set(range(6))
        babble = corrupt.noise(plan, 2 * RATE, torch.Generator().manual_seed(0))
        first = {talker[0] for talker in plan.sources}  # each talker's stream starts with its first
        assert all(_tone_energy(babble, FREQS[i]) > 0.02 for i in first)
        assert _tone_energy(babble, FREQS[index]) < 1e-3  # never the utterance's own voice


def test_generated_impulse_response_has_its_rt60_and_drr():
    rt60, drr = 0.5, 6.0
    rir = generated_rir(RATE, rt60, drr, torch.Generator().manual_seed(0))
    assert rir.numel() == int(rt60 * RATE) and rir[0] == 1.0
    tail = rir[1:]
    assert 10 * math.log10(1.0 / tail.pow(2).sum().item()) == pytest.approx(drr, abs=1e-3)
    # Schroeder backward integration of the tail; T20 (from -5 to -25 dB) extrapolated to 60 dB.
    decay = 10 * torch.log10(tail.double().pow(2).flip(0).cumsum(0).flip(0) / tail.double().pow(2).sum())
    t5, t25 = [int((decay > level).sum()) / RATE for level in (-5.0, -25.0)]
    assert 3 * (t25 - t5) == pytest.approx(rt60, rel=0.1)


def test_reverberation_keeps_length_and_energy():
    speech = tone(1.0, 440.0) * torch.linspace(0, 1, RATE)
    rir = generated_rir(RATE, 0.6, 0.0, torch.Generator().manual_seed(1))
    wet = reverberate(speech, rir)
    assert wet.shape == speech.shape
    assert wet.pow(2).sum().item() == pytest.approx(speech.pow(2).sum().item(), rel=1e-4)
    assert not torch.allclose(wet, speech, atol=1e-3)
    click = torch.zeros(RATE)
    click[0] = 1.0  # an impulse in gives the impulse response out (at the click's energy)
    echo = reverberate(click, rir)
    torch.testing.assert_close(echo[: rir.numel()], rir / rir.pow(2).sum().sqrt(), atol=1e-5, rtol=0)


def test_impulse_responses_from_a_folder_start_at_their_peak(tmp_path, tones):
    rir = torch.zeros(2000)
    rir[300], rir[700] = 0.5, 0.25  # 300 samples of delay before the direct path
    (tmp_path / "rirs").mkdir()
    sf.write(tmp_path / "rirs" / "room.wav", rir.numpy(), RATE, subtype="FLOAT")
    corrupt = corruptor(tones, reverb_prob=1.0, rir_dir=str(tmp_path / "rirs"))
    click = torch.zeros(RATE)
    click[100] = 1.0
    out = corrupt(click, seed=0, epoch=0, index=0)
    assert out.abs().argmax().item() == 100  # no delay added
    assert out[500].item() == pytest.approx(out[100].item() / 2, rel=1e-4)


def test_same_seed_same_corruption_and_others_differ(tones):
    options = dict(noise_prob=1.0, noise_kinds=("white", "pink", "babble"), reverb_prob=0.5)
    clean = tone(1.0, 440.0)
    first = corruptor(tones, **options)
    twin = corruptor(tones, **options)  # a second instance, as in a DataLoader worker or a resumed run
    outs = [first(clean, 7, 0, i) for i in range(6)]
    assert all(torch.equal(a, twin(clean, 7, 0, i)) for i, a in enumerate(outs))
    assert not any(torch.equal(a, first(clean, 7, 1, i)) for i, a in enumerate(outs))
    assert not any(torch.equal(a, first(clean, 8, 0, i)) for i, a in enumerate(outs))
    plans = [first.plan(7, 0, i) for i in range(200)]
    assert {p.noise for p in plans} == {"white", "pink", "babble"}
    assert 60 < sum(p.rt60 > 0 for p in plans) < 140


def test_probabilities_zero_leave_audio_alone(tones):
    corrupt = corruptor(tones)
    assert not corrupt.active
    clean = tone(0.5, 440.0)
    assert torch.equal(corrupt(clean, 0, 0, 0), clean)


def test_noise_sources_that_cannot_be_used_are_named(tmp_path, tones):
    with pytest.raises(NoiseSourceError, match="augment.noise_dir=.*no such folder"):
        corruptor(tones, noise_prob=1.0, noise_kinds=("file",), noise_dir=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoiseSourceError, match="augment.rir_dir=.*no audio files"):
        corruptor(tones, reverb_prob=1.0, rir_dir=str(tmp_path / "empty"))
    with pytest.raises(NoiseSourceError, match="at least 2 training utterances"):
        corruptor(tones[:1], noise_prob=1.0, noise_kinds=("babble",))


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"noise_snr": [10, 0]}, "augment.noise_snr=.*first value must not exceed"),
        ({"noise_prob": 0.5, "noise_kinds": ["file"]}, "augment.noise_dir is empty"),
        ({"noise_kinds": ["grey"]}, "augment.noise_kinds\\[0\\]: 'grey' is not one of"),
        ({"noise_prob": 1.5}, "augment.noise_prob=1.5 is out of range"),
        ({"reverb_rt60": [0.0, 0.5]}, "augment.reverb_rt60=0.0 is out of range"),
    ],
)
def test_bad_noise_settings_are_config_errors(augment, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"augment": augment})


def test_training_names_a_missing_noise_folder(tmp_path, tones):
    from asr.data.manifest import Utterance
    from asr.train.data import corruptor
    from asr.train.errors import TrainingError

    config = from_dict({"augment": {"reverb_prob": 0.3, "rir_dir": str(tmp_path / "rirs")}})
    utterances = [Utterance(f"u{i}", path, 1.0, RATE, "s", "c", "A") for i, path in enumerate(tones)]
    with pytest.raises(TrainingError, match="augment.rir_dir=.*rirs: no such folder or manifest"):
        corruptor(config, utterances)
    assert corruptor(from_dict({"augment": {"noise_prob": 0.5}}), utterances).active


def test_babble_is_refused_for_shards(tones):
    from asr.data.manifest import Utterance
    from asr.train.data import corruptor
    from asr.train.errors import TrainingError

    utterances = [Utterance(f"u{i}", path, 1.0, RATE, "s", "c", "A") for i, path in enumerate(tones)]
    with pytest.raises(TrainingError, match="babble.*data.train_shards"):
        corruptor(from_dict({"augment": {"noise_prob": 0.5}}), utterances, shards=True)
    white = from_dict({"augment": {"noise_prob": 0.5, "noise_kinds": ["white"]}})
    assert corruptor(white, utterances, shards=True).active
