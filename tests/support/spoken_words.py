"""Speech with known silence boundaries: espeak-ng speaks each phrase on its own, the phrases
are trimmed to their first and last non-silent sample (espeak-ng writes digital silence around
speech) and joined with silences of known length. Where each phrase starts and ends is then
exactly where its first word starts and its last word ends.

Used to test word times (tests/test_end_to_end.py, tests/decode/test_attention_align.py,
bench/word_times.py) against where the synthesiser put them.
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


VOICES = [("en-us+m3", 160), ("en-gb+f2", 150), ("en-us+f3", 170), ("en-029+m2", 160), ("en-gb-x-rp+m1", 155)]


def phrase_sets(count: int) -> list[tuple[list[str], np.ndarray, list[tuple[float, float]]]]:
    """``count`` recordings of three sentences of the synthetic grammar (asr.data.synthetic),
    the voices in turn, 0.3-0.6 s apart: (phrases, audio, each phrase's (start, end)). The
    same count gives the same audio, and a larger one starts with the same recordings."""
    import random

    from asr.data.synthetic import make_sentences

    rng = random.Random(0)
    sentences = make_sentences(3 * count, seed=321)
    sets = []
    for k in range(count):
        phrases = sentences[3 * k : 3 * k + 3]
        voice, speed = VOICES[k % len(VOICES)]
        audio, bounds = spoken_phrases(phrases, [rng.uniform(0.3, 0.6) for _ in phrases[1:]], voice=voice, speed=speed)
        sets.append((phrases, audio, bounds))
    return sets


def boundary_errors(
    phrases: list[str], bounds: list[tuple[float, float]], words: list[tuple[str, float, float]]
) -> tuple[list[float], int]:
    """How far recognised ``words`` (text, start, end) put each phrase's edges: |start - true
    start| of its first word and |end - true end| of its last, for the boundary words that
    were recognised (:func:`matched_words`). Returns those errors in seconds and the number
    of boundaries (twice the phrases)."""
    found = matched_words(phrases, words)
    errors, first = [], 0
    for phrase, (start, end) in zip(phrases, bounds):
        last = first + len(phrase.split()) - 1
        for index, side, true in ((first, 1, start), (last, 2, end)):
            if index in found:
                errors.append(abs(words[found[index]][side] - true))
        first = last + 1
    return errors, 2 * len(phrases)


def words_in_their_phrase(
    phrases: list[str], bounds: list[tuple[float, float]], words: list[tuple[str, float, float]]
) -> tuple[int, int]:
    """(recognised words whose middle lies inside their own phrase's span, recognised words)."""
    found = matched_words(phrases, words)
    spans = [span for phrase, span in zip(phrases, bounds) for _ in phrase.split()]
    inside = sum(spans[a][0] <= (words[b][1] + words[b][2]) / 2 <= spans[a][1] for a, b in found.items())
    return inside, len(found)


def matched_words(phrases: list[str], words: list[tuple[str, float, float]]) -> dict[int, int]:
    """Index of each spoken word -> index of the recognised word it was matched with (in order
    by difflib, compared lower-case without punctuation); unrecognised words are left out."""
    import difflib
    import string

    def plain(text: str) -> str:
        return text.lower().strip(string.punctuation)

    truth = " ".join(phrases).split()
    matcher = difflib.SequenceMatcher(a=[plain(w) for w in truth], b=[plain(w[0]) for w in words], autojunk=False)
    return {a + i: b + i for a, b, n in matcher.get_matching_blocks() for i in range(n)}


def transcribed_words(recognizer, audio: np.ndarray, **options) -> tuple[list[tuple], list[tuple]]:
    """``recognizer.transcribe(audio)``'s words as (text, start, end), and the same words as the
    aligner gave them, before ``asr.decode.word_times.fit_to_speech`` moved them to the edges of
    speech (one decoding gives both)."""
    from unittest import mock

    import asr.decode.word_times as word_times

    raw, fit = [], word_times.fit_to_speech

    def recording(words, *args):
        raw.extend(words)
        return fit(words, *args)

    with mock.patch.object(word_times, "fit_to_speech", recording):
        result = recognizer.transcribe(audio, RATE, **options)
    return [(w.text, w.start, w.end) for w in result.words], [(w.text, w.start, w.end) for w in raw]
