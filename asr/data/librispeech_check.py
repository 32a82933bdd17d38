"""Is a copy of an official LibriSpeech subset whole? Checked by reading only, never writing.

A subset this toolkit extracted carries the ``.complete`` marker (asr.data.download). A copy
unpacked elsewhere, often on a read-only disk, has none. Instead it is compared with what the
official subset holds: its numbers of speakers, chapters, transcript files and utterances, and
every transcript line must have its audio file. The layout is the tarballs':
``<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` beside the audio files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = (".flac", ".wav")  # official copies hold FLAC; a converted copy may hold WAV


@dataclass(frozen=True)
class SubsetCounts:
    """What one official subset holds. Each chapter folder has one transcript file."""

    speakers: int
    chapters: int
    transcripts: int
    utterances: int


# Sources. No copy of LibriSpeech or of its SPEAKERS.TXT / CHAPTERS.TXT was at hand to count, so:
# - utterances: checked against s3prl 0.4.18, test/test_librispeech.py (``libri_stats``, which
#   that test asserts on full copies).
# - speakers: Panayotov et al., "LibriSpeech: an ASR corpus based on public domain audio books",
#   ICASSP 2015, Table 1 (female + male speakers per subset). Not checked against a copy here.
# - chapters (one transcript file each): as counted from CHAPTERS.TXT by subset. Not checked
#   against any copy here. Were one wrong, a whole copy would be refused with "N of M chapters"
#   and nothing else missing; --trust-layout would then use it as it is.
OFFICIAL_COUNTS: dict[str, SubsetCounts] = {
    "dev-clean": SubsetCounts(speakers=40, chapters=97, transcripts=97, utterances=2703),
    "dev-other": SubsetCounts(speakers=33, chapters=91, transcripts=91, utterances=2864),
    "test-clean": SubsetCounts(speakers=40, chapters=87, transcripts=87, utterances=2620),
    "test-other": SubsetCounts(speakers=33, chapters=90, transcripts=90, utterances=2939),
    "train-clean-100": SubsetCounts(speakers=251, chapters=585, transcripts=585, utterances=28539),
    "train-clean-360": SubsetCounts(speakers=921, chapters=2439, transcripts=2439, utterances=104014),
    "train-other-500": SubsetCounts(speakers=1166, chapters=3006, transcripts=3006, utterances=148688),
}


@dataclass
class Inventory:
    """What a subset folder holds, counted as ``SubsetCounts`` are, and where it falls short."""

    speakers: int = 0
    chapters: int = 0
    transcripts: int = 0
    utterances: int = 0  # transcript lines whose audio file is there
    untranscribed: list[str] = field(default_factory=list)  # "<speaker>/<chapter>" without transcript
    without_audio: dict[str, list[str]] = field(default_factory=dict)  # chapter -> utterance ids


def take_inventory(folder: Path) -> Inventory:
    """Count speakers, chapters, transcripts and utterances under ``folder``; reads, never writes."""
    found = Inventory()
    for speaker in _subfolders(folder):
        found.speakers += 1
        for chapter in _subfolders(speaker):
            found.chapters += 1
            _count_chapter(chapter, f"{speaker.name}/{chapter.name}", found)
    return found


def _subfolders(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:  # hidden entries (the marker, editors' files) are not data
        return sorted(Path(e.path) for e in entries if e.is_dir() and not e.name.startswith("."))


def _count_chapter(chapter: Path, key: str, found: Inventory) -> None:
    names = set(os.listdir(chapter))
    transcript = f"{chapter.parent.name}-{chapter.name}.trans.txt"
    if transcript not in names:
        found.untranscribed.append(key)
        return
    found.transcripts += 1
    text = (chapter / transcript).read_bytes().decode("utf-8", errors="replace")
    for line in text.splitlines():
        if not line.strip():
            continue
        utt_id = line.split(maxsplit=1)[0]
        if any(utt_id + ext in names for ext in AUDIO_EXTENSIONS):
            found.utterances += 1
        else:
            found.without_audio.setdefault(key, []).append(utt_id)


def shortfall(found: Inventory, official: SubsetCounts) -> str:
    """How ``found`` differs from the official subset, in one line; empty when it does not."""
    parts = [
        _compare(have, want, name)
        for have, want, name in (
            (found.utterances, official.utterances, "utterances"),
            (found.speakers, official.speakers, "speakers"),
            (found.chapters, official.chapters, "chapters"),
            (found.transcripts, official.transcripts, "transcript files"),
        )
        if have != want
    ]
    if found.untranscribed:
        parts.append(f"no transcript in chapter {_few(found.untranscribed)}")
    if found.without_audio:
        lines = sum(len(ids) for ids in found.without_audio.values())
        first = next(iter(found.without_audio.values()))[0]
        what = "transcript line without its audio file" if lines == 1 else "transcript lines without their audio files"
        parts.append(f"{lines:,} {what} (first {first}) in chapter {_few(list(found.without_audio))}")
    return "; ".join(parts)


def _compare(have: int, want: int, name: str) -> str:
    if have < want:
        return f"{have:,} of {want:,} {name}"
    return f"{have:,} {name} where the official subset has {want:,}"


def _few(names: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: enough names to find the place, and the line stays short."""
    listed = ", ".join(names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown:,} more"
