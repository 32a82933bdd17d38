"""Speech with known silence boundaries: espeak-ng speaks each phrase on its own, the phrases
are trimmed to their first and last non-silent sample (espeak-ng writes digital silence around
speech) and joined with silences of known length. Where each phrase starts and ends is then
exactly where its first word starts and its last word ends.

Used to test word times (tests/test_end_to_end.py) against where the synthesiser put them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

RATE = 16000
SILENT = 1e-3  # |sample| below this is silence (espeak-ng's own is exactly 0)


def speak(text: str, voice: str = "en-us+m3", speed: int = 160) -> np.ndarray:
    """``text`` -> (S,) float32 at 16 kHz, trimmed to its first and last non-silent sample."""
    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is needed (recipes/setup.sh installs it)"
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(wav), text.lower()], check=True)
        data, rate = sf.read(str(wav), dtype="float32")
    wave = AF.resample(torch.from_numpy(data), rate, RATE).numpy()
    loud = np.flatnonzero(np.abs(wave) >= SILENT)
    return wave[loud[0] : loud[-1] + 1]


def spoken_phrases(
    phrases: list[str], gaps: list[float], lead: float = 0.3, **voice
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Phrases joined by ``gaps`` seconds of silence (one fewer than phrases), with ``lead``
    seconds before the first and after the last. Returns the audio and each phrase's (start, end)."""
    assert len(gaps) == len(phrases) - 1
    pieces, bounds, at = [], [], 0
    pauses = [int(lead * RATE), *(int(round(g * RATE)) for g in gaps)]
    for pause, phrase in zip(pauses, phrases):
        wave = speak(phrase, **voice)
        pieces += [np.zeros(pause, np.float32), wave]
        at += pause
        bounds.append((at / RATE, (at + wave.size) / RATE))
        at += wave.size
    pieces.append(np.zeros(int(lead * RATE), np.float32))
    return np.concatenate(pieces), bounds
