"""Test helper: a LibriSpeech-layout tree with exact, known contents (waveforms or tones).

Lives with the tests (not in the package): it writes audio and transcripts as given, without the
checks the toolkit makes, so tests can build both good and deliberately broken corpora.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.data.download import COMPLETE_MARKER

SAMPLE_RATE = 16000



def _tone(index: int, sample_rate: int) -> np.ndarray:
    """A 1 s tone at a frequency set by ``index``: utterances differ yet are reproducible."""
    t = np.arange(sample_rate) / sample_rate
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t)).astype(np.float32)


def make_librispeech_tree(
    root: str | Path,
    subset: str,
    utterances: Sequence[tuple[str, str, str, torch.Tensor | np.ndarray | None]],
    sample_rate: int = SAMPLE_RATE,
    float_wav: bool = False,
    complete: bool = True,
) -> Path:
    """Write ``(speaker, chapter, text, waveform)`` utterances as ``root/LibriSpeech/<subset>``.

    Utterances of one speaker and chapter are numbered in the order given: ``<spk>-<chap>-0000``,
    ``-0001``, ... A waveform of None becomes a 1 s tone. Texts are written as given (not
    normalised), and an empty text gives a line holding only the id. Audio is 16-bit FLAC, or
with ``float_wav`` 32-bit float WAV (which can hold NaN and Inf). With ``complete`` the subset
gets its completion marker, as a finished extraction leaves. Returns the subset folder.
    """
    subset_dir = Path(root) / "LibriSpeech" / subset
    lines: dict[Path, list[str]] = defaultdict(list)
    for index, (speaker, chapter, text, waveform) in enumerate(utterances):
        folder = subset_dir / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        transcript = folder / f"{speaker}-{chapter}.trans.txt"
        utt_id = f"{speaker}-{chapter}-{len(lines[transcript]):04d}"
        audio = _tone(index, sample_rate) if waveform is None else np.asarray(waveform, np.float32)
        if float_wav:
            sf.write(folder / f"{utt_id}.wav", audio, sample_rate, subtype="FLOAT")
        else:
            sf.write(folder / f"{utt_id}.flac", audio, sample_rate, subtype="PCM_16")
        lines[transcript].append(f"{utt_id} {text}".rstrip())
    for transcript, content in lines.items():
        transcript.write_text("\n".join(content) + "\n")
    if complete:
        (subset_dir / COMPLETE_MARKER).write_text("")
    return subset_dir
