"""Waveform corruption: additive noise at a chosen SNR, and reverberation.

Used on the fly in training (``augment.noise_*`` and ``augment.reverb_*``, see ``Corruptor``) and
to build noisy test sets (recipes/digits/local/make_noisy.py), so both mix alike.

Noise kinds:
    white, pink, brown  Gaussian noise with a 1/f^alpha power spectrum, alpha 0, 1 and 2;
    babble              the sum of several other utterances of the training set, each at the same
                        level (each talker's stream joins random utterances end to end);
    file                a random stretch of a recording from a folder of audio (or a manifest),
                        such as MUSAN's noise, looped when shorter than the utterance.
The noise is scaled by ``torchaudio.functional.add_noise`` so that, over the utterance,
10 log10(speech energy / noise energy) is the SNR drawn.

Reverberation convolves (``torchaudio.functional.fftconvolve``) with a room impulse response
from a folder, or one generated with Polack's statistical model: a direct-path impulse and a
tail of Gaussian noise under an exponential envelope that falls by 60 dB in RT60 seconds, at a
direct-to-reverberant energy ratio (DRR) drawn too. Why not pyroomacoustics' image-source
rooms: it would add scipy and a compiled extension for what, in training, is one random
impulse response per utterance; what a recogniser learns from is the decay time and the DRR,
which the statistical model sets directly. Measured or simulated impulse responses (from any
simulator) can be given with ``augment.rir_dir``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torchaudio.functional as AF

from asr.audio import load_audio
from asr.config import AugmentConfig
from asr.data.manifest import read_manifest

COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # alpha of the 1/f^alpha power spectrum
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# Utterances joined end to end per babble talker, at most (fewer when long enough; then looped).
BABBLE_JOINS = 8
DIRECT_MS = 2.0  # the tail of a generated impulse response starts this long after the direct path


class NoiseSourceError(ValueError):
    """A noise or impulse-response folder that cannot be used; the message names it and the key."""


def coloured_noise(samples: int, colour: str, generator: torch.Generator) -> torch.Tensor:
    """(samples,) Gaussian noise with a 1/f^alpha power spectrum (white, pink or brown), unit RMS."""
    white = torch.randn(samples, generator=generator)
    alpha = COLOURS[colour]
    if alpha == 0.0 or samples < 2:
        return white
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.numel(), dtype=torch.float32)
    freqs[0] = 1.0  # keep the DC bin as it is rather than dividing by 0
    shaped = torch.fft.irfft(spectrum / freqs ** (alpha / 2), n=samples)
    shaped = shaped - shaped.mean()
    return shaped / shaped.pow(2).mean().sqrt().clamp(min=1e-12)


def mix_at_snr(speech: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``speech`` (S,) plus ``noise`` (S,) scaled so that the mix has ``snr_db`` dB SNR.

    Silent speech or noise is returned unchanged (there is no level to set).
    """
    if not bool(speech.any()) or not bool(noise.any()):
        return speech
    return AF.add_noise(speech[None], noise[None], torch.tensor([float(snr_db)]))[0]


def fit_length(wave: torch.Tensor, samples: int, offset: int) -> torch.Tensor:
    """``samples`` samples of ``wave`` looped from ``offset`` on (a random stretch of a noise)."""
    if wave.numel() == 0:
        return torch.zeros(samples)
    repeats = (offset % wave.numel() + samples) // wave.numel() + 1
    start = offset % wave.numel()
    return wave.repeat(repeats)[start : start + samples]


def talker_stream(
    load: Callable[[int], torch.Tensor], choices: list[int], samples: int
) -> torch.Tensor:
    """One babble talker: the utterances ``choices`` end to end at unit RMS, cut to ``samples``."""
    parts, total = [], 0
    for index in choices:
        wave = load(index)
        rms = wave.pow(2).mean().sqrt()
        if wave.numel() == 0 or rms == 0:
            continue
        parts.append(wave / rms)
        total += wave.numel()
        if total >= samples:
            break
    if not parts:
        return torch.zeros(samples)
    return fit_length(torch.cat(parts), samples, 0)


def generated_rir(
    sample_rate: int, rt60: float, drr_db: float, generator: torch.Generator
) -> torch.Tensor:
    """(L,) impulse response of Polack's model: 1 at sample 0, then an exponentially decaying
    Gaussian tail (-60 dB after ``rt60`` s) from DIRECT_MS on, with ``drr_db`` dB more energy in
    the direct path than in the tail. L = rt60 seconds (the tail is 60 dB down there)."""
    length = max(2, round(rt60 * sample_rate))
    t = torch.arange(length, dtype=torch.float32) / sample_rate
    tail = torch.randn(length, generator=generator) * torch.exp(-3.0 * math.log(10.0) * t / rt60)
    tail[: max(1, round(DIRECT_MS * sample_rate / 1000))] = 0.0
    tail = tail * math.sqrt(10 ** (-drr_db / 10) / tail.pow(2).sum().clamp(min=1e-12))
    tail[0] = 1.0
    return tail


def align_rir(rir: torch.Tensor) -> torch.Tensor:
    """A measured impulse response from its peak (the direct path) on, peak 1: no delay added."""
    peak = int(rir.abs().argmax())
    rir = rir[peak:]
    return rir / rir[0] if rir[0] != 0 else rir


def reverberate(speech: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """``speech`` (S,) convolved with ``rir`` (L,), cut to S samples (the direct path at sample 0
    keeps the words where they were) and scaled back to the speech's own energy."""
    if speech.numel() == 0 or not bool(speech.any()):
        return speech
    wet = AF.fftconvolve(speech, rir)[: speech.numel()]
    return wet * (speech.pow(2).sum() / wet.pow(2).sum().clamp(min=1e-20)).sqrt()


def audio_files(source: str, key: str) -> list[str]:
    """The audio files of a folder (sorted, recursively) or the utterances of a manifest."""
    path = Path(source)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        if not found:
            raise NoiseSourceError(f"{key}={source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in that folder")
        return found
    if path.is_file():
        return [u.audio for u in read_manifest(path)]
    raise NoiseSourceError(f"{key}={source}: no such folder or manifest")


@dataclass(frozen=True)
class Plan:
    """What happens to one utterance: drawn from (seed, epoch, index) alone (``Corruptor.plan``)."""

    noise: str = ""  # "" = none, else a kind of AugmentConfig.noise_kinds
    snr_db: float = 0.0
    sources: tuple[tuple[int, ...], ...] = ()  # babble: each talker's utterances; file: ((file,),)
    offset: int = 0  # where a file's noise starts, in samples (before looping)
    rt60: float = 0.0  # 0 = no reverberation
    drr_db: float = 0.0
    rir: int = -1  # index into the impulse-response files; -1 = generated
    torch_seed: int = 0  # generated noise and impulse responses


class Corruptor:
    """Reverberation then additive noise, per utterance, reproducibly (augment.noise_* and
    augment.reverb_*). ``utterance_audio`` are the training set's files (babble sources)."""

    def __init__(self, config: AugmentConfig, sample_rate: int, utterance_audio: list[str]):
        self.config = config
        self.sample_rate = sample_rate
        self.utterance_audio = utterance_audio
        uses_files = config.noise_prob > 0 and "file" in config.noise_kinds
        self.noise_files = audio_files(config.noise_dir, "augment.noise_dir") if uses_files else []
        uses_rirs = config.reverb_prob > 0 and config.rir_dir
        self.rir_files = audio_files(config.rir_dir, "augment.rir_dir") if uses_rirs else []
        if config.noise_prob > 0 and "babble" in config.noise_kinds and len(utterance_audio) < 2:
            raise NoiseSourceError("augment.noise_kinds has babble: it needs at least 2 training utterances")

    @property
    def active(self) -> bool:
        return self.config.noise_prob > 0 or self.config.reverb_prob > 0

    def plan(self, seed: int, epoch: int, index: int) -> Plan:
        """The corruption of utterance ``index`` in ``epoch``: seeded from the text
        "seed:epoch:index:corrupt" (as speed perturbation's choice), so workers and resumed runs
        draw the same."""
        cfg = self.config
        rng = random.Random(f"{seed}:{epoch}:{index}:corrupt")
        plan: dict = {"torch_seed": rng.getrandbits(63)}
        if rng.random() < cfg.reverb_prob:
            plan.update(rt60=rng.uniform(*cfg.reverb_rt60), drr_db=rng.uniform(*cfg.reverb_drr))
            plan["rir"] = rng.randrange(len(self.rir_files)) if self.rir_files else -1
        if rng.random() < cfg.noise_prob:
            kind = rng.choice(cfg.noise_kinds)
            plan.update(noise=kind, snr_db=rng.uniform(*cfg.noise_snr))
            if kind == "babble":
                plan["sources"] = self._babble_sources(rng, index)
            elif kind == "file":
                plan.update(sources=((rng.randrange(len(self.noise_files)),),), offset=rng.getrandbits(31))
        return Plan(**plan)

    def _babble_sources(self, rng: random.Random, index: int) -> tuple[tuple[int, ...], ...]:
        """Per talker, a few random other utterances (never ``index`` itself) to join end to end."""
        talkers = rng.randint(*self.config.babble_talkers)
        return tuple(tuple(self._other(rng, index) for _ in range(BABBLE_JOINS)) for _ in range(talkers))

    def _other(self, rng: random.Random, index: int) -> int:
        """A random utterance other than ``index``, uniformly."""
        drawn = rng.randrange(len(self.utterance_audio) - 1)
        return drawn + (drawn >= index)

    def __call__(self, wave: torch.Tensor, seed: int, epoch: int, index: int) -> torch.Tensor:
        if not self.active:
            return wave
        return self.apply(wave, self.plan(seed, epoch, index))

    def apply(self, wave: torch.Tensor, plan: Plan) -> torch.Tensor:
        """``wave`` (S,) corrupted as ``plan`` says."""
        generator = torch.Generator().manual_seed(plan.torch_seed)
        if plan.rt60 > 0:
            if plan.rir >= 0:
                rir = align_rir(load_audio(self.rir_files[plan.rir], self.sample_rate)[0])
            else:
                rir = generated_rir(self.sample_rate, plan.rt60, plan.drr_db, generator)
            wave = reverberate(wave, rir)
        if plan.noise:
            wave = mix_at_snr(wave, self.noise(plan, wave.numel(), generator), plan.snr_db)
        return wave

    def noise(self, plan: Plan, samples: int, generator: torch.Generator) -> torch.Tensor:
        """The unscaled (samples,) noise of ``plan``."""
        if plan.noise in COLOURS:
            return coloured_noise(samples, plan.noise, generator)
        if plan.noise == "babble":
            load = lambda i: load_audio(self.utterance_audio[i], self.sample_rate)[0]  # noqa: E731
            return sum(talker_stream(load, list(choices), samples) for choices in plan.sources)
        wave = load_audio(self.noise_files[plan.sources[0][0]], self.sample_rate)[0]
        return fit_length(wave, samples, plan.offset)
