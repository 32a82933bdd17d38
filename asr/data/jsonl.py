"""Users' own data -> a checked manifest: a JSONL list of recordings with only id, audio and text.

Input, one JSON object per line::

    {"id": "utt1", "audio": "clips/utt1.wav", "text": "Hello there", "speaker": "anna"}

``id``, ``audio`` and ``text`` are required; ``speaker`` defaults to the id's part before its
first ``-`` or ``_`` (the whole id if it has none), and duration and sample rate are read from
the audio. A relative audio path is relative to the input file's folder. Every audio file is
checked as ``prepare librispeech`` checks it, texts are normalised (``--normalizer``), and every
entry that cannot be used (an id holding a TAB or another control character among them) is
left out and listed with its reason in ``<out>/<name>.rejected.tsv``.

:func:`finish` is shared with the Kaldi reader (:mod:`asr.data.kaldi`): both turn their input
into :class:`Entry` objects, and ``finish`` checks them and writes the manifest.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from rich.console import Console

from asr.data.librispeech import (
    DUPLICATE,
    EMPTY_AUDIO,
    EMPTY_TRANSCRIPT,
    MALFORMED,
    NO_AUDIO,
    TRUNCATED,
    UNREADABLE,
    PrepareError,
    PrepareReport,
)
from asr.data.manifest import Utterance, id_problem, write_manifest
from asr.files import write_lines
from asr.text.normalize import get_normalizer

OUTSIDE = "segment outside the audio"
CONTROL_IN_ID = "control character (TAB, newline, ...) in the id"
_TAIL_FRAMES = 4096
_SPEAKER_PREFIX = re.compile(r"^([^-_]+)[-_]")


@dataclass(frozen=True)
class Entry:
    """One utterance to check: where it came from (file:line), its audio and its text."""

    id: str
    audio: Path
    text: str
    where: str
    speaker: str | None = None
    start: float | None = None  # seconds: the utterance is a slice of the audio (Kaldi segments)
    end: float | None = None


def prepare_jsonl(
    path: str | Path, out_dir: str | Path, *, name: str | None = None, normalizer: str = "librispeech",
    console: Console | None = None,
) -> PrepareReport:  # fmt: skip
    """Check the entries of a JSONL file and write ``<out_dir>/<name>.jsonl`` (name: the file's stem)."""
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"manifest {path} not found")
    entries, rejections = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
            audio = Path(record["audio"])
            entries.append(Entry(str(record["id"]), audio if audio.is_absolute() else path.parent / audio,
                                 str(record["text"]), where, record.get("speaker")))  # fmt: skip
        except (json.JSONDecodeError, KeyError, TypeError):
            rejections.append((where, MALFORMED))
    return finish(name or path.stem, entries, rejections, Path(out_dir), normalizer, console)


def finish(
    name: str, entries: list[Entry], rejections: list[tuple[str, str]], out_dir: Path, normalizer: str,
    console: Console | None = None,
) -> PrepareReport:  # fmt: skip
    """Check entries (ids, texts, audio), cut Kaldi segments into files under
    ``<out_dir>/<name>-audio/``, and write the manifest and the rejections."""
    clean = get_normalizer(normalizer)
    seen: set[str] = set()
    utterances = []
    for entry in entries:
        if entry.id in seen:
            rejections.append((entry.where, DUPLICATE))
            continue
        seen.add(entry.id)
        if id_problem(entry.id):
            rejections.append((entry.where, CONTROL_IN_ID))
            continue
        text = clean(entry.text)
        if not text:  # empty, or emptied by the normaliser (another script?)
            rejections.append((entry.where, EMPTY_TRANSCRIPT))
            continue
        utterance, reason = _checked(entry, text, out_dir / f"{name}-audio")
        if reason:
            rejections.append((str(entry.audio), reason))
        else:
            utterances.append(utterance)
    manifest = out_dir / f"{name}.jsonl"
    write_manifest(utterances, manifest)
    write_lines(out_dir / f"{name}.rejected.tsv", ["path\treason", *(f"{w}\t{r}" for w, r in sorted(rejections))])
    reasons = Counter(reason for _, reason in rejections)
    if console is not None and reasons.get(EMPTY_TRANSCRIPT):
        console.print(f"[yellow]{name}: {reasons[EMPTY_TRANSCRIPT]} empty transcript(s) under the "
                      f"{normalizer!r} normalizer (for other scripts use --normalizer unicode)")  # fmt: skip
    hours = sum(u.duration for u in utterances) / 3600
    return PrepareReport(name, len(utterances), hours, dict(reasons), sorted(rejections), manifest)


def _checked(entry: Entry, text: str, audio_dir: Path) -> tuple[Utterance | None, str | None]:
    """The manifest record of a good entry, or the reason it is rejected."""
    if not entry.audio.is_file():
        return None, NO_AUDIO
    frames, rate, reason = probe(entry.audio)
    if reason:
        return None, reason
    speaker = entry.speaker or default_speaker(entry.id)
    audio, duration = str(entry.audio.resolve()), frames / rate
    if entry.start is not None and entry.end is not None:
        end = duration if entry.end < 0 else entry.end  # Kaldi: an end of -1 is the end of the file
        if not 0 <= entry.start < end or end > duration + 0.01:
            return None, OUTSIDE
        audio, duration = str(_cut(entry, entry.start, min(end, duration), rate, audio_dir)), min(end, duration) - entry.start
    return Utterance(entry.id, audio, duration, rate, str(speaker), "", text), None


def _cut(entry: Entry, start: float, end: float, rate: int, audio_dir: Path) -> Path:
    """Write the segment [start, end) seconds of the entry's audio as FLAC; return its path."""
    first, last = int(start * rate), int(end * rate)
    data, _ = sf.read(str(entry.audio), start=first, stop=last, dtype="float32", always_2d=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    target = (audio_dir / f"{entry.id}.flac").resolve()
    sf.write(str(target), data.mean(axis=1), rate, subtype="PCM_16")
    return target


def default_speaker(utterance_id: str) -> str:
    """The id's part before its first ``-`` or ``_`` (Kaldi and LibriSpeech put the speaker
    first), or the whole id."""
    match = _SPEAKER_PREFIX.match(utterance_id)
    return match.group(1) if match else utterance_id


def probe(path: Path) -> tuple[int, int, str | None]:
    """``(frames, rate, None)`` for a whole, non-empty audio file, else ``(0, 0, reason)``;
    decoding the last block proves the file is not cut short (as ``prepare librispeech`` does)."""
    try:
        f = sf.SoundFile(str(path))
    except (sf.SoundFileError, RuntimeError):
        return 0, 0, UNREADABLE
    with f:
        frames, rate = f.frames, f.samplerate
        if frames <= 0:
            return 0, 0, EMPTY_AUDIO
        tail = min(frames, _TAIL_FRAMES)
        try:
            f.seek(frames - tail)
            complete = len(f.read(tail, dtype="float32")) == tail
        except (sf.SoundFileError, RuntimeError):
            complete = False
    return (frames, rate, None) if complete else (0, 0, TRUNCATED)
