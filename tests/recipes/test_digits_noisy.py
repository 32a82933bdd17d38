"""recipes/digits/local/make_noisy.py: noisy test sets at the SNRs asked for, babble of other
speakers, the same files on a rerun."""

import math
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from asr.data.manifest import Utterance, read_manifest, write_manifest

REPO = Path(__file__).resolve().parents[2]
MAKE_NOISY = REPO / "recipes" / "digits" / "local" / "make_noisy.py"
RATE = 16000


def _tones(folder: Path, speaker: str, freqs: list[float]) -> Path:
    folder.mkdir(parents=True)
    utterances = []
    for i, hz in enumerate(freqs):
        t = torch.arange(int(0.6 * RATE)) / RATE
        path = folder / f"{speaker}-{i}.flac"
        sf.write(path, (0.4 * torch.sin(2 * math.pi * hz * t)).numpy(), RATE)
        utterances.append(Utterance(f"{speaker}-{i}", str(path), 0.6, RATE, speaker, "1", "ONE"))
    write_manifest(utterances, folder / f"{speaker}.jsonl")
    return folder / f"{speaker}.jsonl"


def _make(tmp_path: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    test = tmp_path / "test" / "105.jsonl"
    babble = tmp_path / "dev" / "101.jsonl"
    command = [sys.executable, str(MAKE_NOISY), "--test", str(test), "--babble", str(babble),
               "--out", str(tmp_path / out), "--manifests", str(tmp_path / out / "manifests"), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("noisy")
    _tones(tmp_path / "test", "105", [440.0, 550.0])
    _tones(tmp_path / "dev", "101", [300.0, 700.0, 900.0])
    result = _make(tmp_path, "noisy")
    assert result.returncode == 0, result.stderr
    return tmp_path


@pytest.mark.parametrize("condition, snr", [("white10", 10.0), ("white0", 0.0), ("babble10", 10.0), ("babble0", 0.0)])
def test_noisy_sets_have_their_snr(sets, condition, snr):
    clean = read_manifest(sets / "test" / "105.jsonl")
    noisy = read_manifest(sets / "noisy" / "manifests" / f"105-{condition}.jsonl")
    assert [u.id for u in noisy] == [u.id for u in clean] and [u.text for u in noisy] == [u.text for u in clean]
    for c, n in zip(clean, noisy):
        x, y = (torch.from_numpy(sf.read(u.audio, dtype="float64")[0]) for u in (c, n))
        scale = float((x * y).sum() / (x * x).sum())  # a mix that would clip is scaled down whole
        measured = 10 * math.log10((scale * x).pow(2).sum() / (y - scale * x).pow(2).sum())
        assert measured == pytest.approx(snr, abs=0.3)  # 16-bit files; noise not quite orthogonal


def test_babble_holds_the_other_speakers_and_reruns_are_identical(sets):
    wave = torch.from_numpy(sf.read(sets / "noisy" / "babble0" / "105-0.flac", dtype="float32")[0])
    spectrum = torch.fft.rfft(wave).abs().pow(2)
    share = lambda hz: float(spectrum[round(hz * wave.numel() / RATE) - 2 :][:5].sum() / spectrum.sum())  # noqa: E731
    assert sum(share(hz) for hz in (300.0, 700.0, 900.0)) > 0.3 and share(440.0) > 0.3
    assert _make(sets, "again").returncode == 0
    for first in (sets / "noisy").glob("*/*.flac"):
        assert first.read_bytes() == (sets / "again" / first.relative_to(sets / "noisy")).read_bytes()


def test_babble_of_the_test_speaker_is_refused(tmp_path):
    _tones(tmp_path / "test", "105", [440.0])
    _tones(tmp_path / "dev", "101", [300.0])
    result = _make(tmp_path, "noisy", "--babble", str(tmp_path / "test" / "105.jsonl"))
    assert result.returncode != 0 and "babble must be others" in result.stderr
