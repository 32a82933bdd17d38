"""Reading the transcripts that get scored: ``id<TAB>text`` files or JSONL manifests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr import files
from asr.data.manifest import Utterance, read_manifest

# LibriSpeech utterance ids are <speaker>-<chapter>-<index>, e.g. 1089-134686-0000.
_LIBRISPEECH_ID = re.compile(r"^(\d+)-\d+-\d+$")
_MANIFEST_SUFFIXES = {".jsonl", ".json"}


class TranscriptError(ValueError):
    """A transcript file that cannot be read; the message names the file and line."""


@dataclass
class Transcripts:
    """Texts keyed by utterance id, with each utterance's speaker where known.

    ``speakers`` may be empty (or cover only some ids): per-speaker scores then
    leave out the utterances whose speaker is unknown.
    """

    texts: dict[str, str]
    speakers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_utterances(cls, utterances: Iterable[Utterance]) -> Transcripts:
        """Reference transcripts (and speakers) from manifest records."""
        texts: dict[str, str] = {}
        speakers: dict[str, str] = {}
        for utt in utterances:
            texts[utt.id] = utt.text
            if utt.speaker:
                speakers[utt.id] = utt.speaker
        return cls(texts, speakers)


def librispeech_speaker(utterance_id: str) -> str | None:
    """The speaker field of a LibriSpeech-style id (``1089-134686-0000`` -> ``1089``), else None."""
    match = _LIBRISPEECH_ID.match(utterance_id)
    return match.group(1) if match else None


def load_transcripts(path: str | Path) -> Transcripts:
    """Read transcripts from an ``id<TAB>text`` file, a Kaldi ``text`` file (``id text``,
    split at the first space; a file with no tab at all is read so) or a JSONL manifest.

    A manifest is recognised by a ``.jsonl``/``.json`` suffix or by a first
    non-blank line that starts with ``{``; its ``speaker`` field is kept. In a
    tab-separated file the text may be empty (``id<TAB>`` or a bare ``id``: an
    empty hypothesis is a valid one), and LibriSpeech-style ids give the speaker.
    Texts are returned as written; :func:`asr.metrics.score` normalises them.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        TranscriptError: on a malformed line or a repeated id, naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcript file not found: {path}")
    if _is_manifest(path):
        return _load_manifest(path)
    return _load_tsv(path)


def _is_manifest(path: Path) -> bool:
    if path.suffix.lower() in _MANIFEST_SUFFIXES:
        return True
    for line in files.read_text_lines(path):  # a UTF-8 BOM is dropped
        if line.strip():
            return line.lstrip().startswith("{")
    return False


def _load_manifest(path: Path) -> Transcripts:
    # read_manifest raises ManifestError (a ValueError) naming file:line, and both lines of a
    # repeated id.
    return Transcripts.from_utterances(read_manifest(path))


def _load_tsv(path: Path) -> Transcripts:
    texts: dict[str, str] = {}
    speakers: dict[str, str] = {}
    first_line: dict[str, int] = {}
    lines = files.read_text_lines(path)
    kaldi = not any("\t" in line for line in lines)  # no tab anywhere: Kaldi's "id text"
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        utt_id, text = _split_line(line, path, number, kaldi)
        if utt_id in texts:
            raise TranscriptError(
                f"{path}:{number}: duplicate id {utt_id!r} (first at line {first_line[utt_id]})"
            )
        texts[utt_id] = text
        first_line[utt_id] = number
        speaker = librispeech_speaker(utt_id)
        if speaker is not None:
            speakers[utt_id] = speaker
    return Transcripts(texts, speakers)


def _split_line(line: str, path: Path, number: int, kaldi: bool) -> tuple[str, str]:
    """``id<TAB>text``, or in a Kaldi file ``id text`` (the id ends at the first space)."""
    if kaldi:
        utt_id, _, text = line.strip().partition(" ")
        return utt_id, text.strip()
    utt_id, tab, text = line.partition("\t")
    utt_id = utt_id.strip()
    # An id with spaces before the tab would become one long id and silently score as a
    # missing hypothesis, so it is an error, not a guess.
    if not utt_id or any(c.isspace() for c in utt_id):
        shown = line if len(line) <= 60 else line[:57] + "..."
        raise TranscriptError(f"{path}:{number}: expected 'id<TAB>text', got {shown!r}")
    return utt_id, text.strip() if tab else ""
