"""A Kaldi data directory (the layout of Kaldi, ESPnet, WeNet and icefall) -> a checked manifest.

    DIR/wav.scp    <recording-id> <audio file>         (required)
    DIR/text       <utterance-id> <transcript>         (required)
    DIR/utt2spk    <utterance-id> <speaker>            (optional: speaker from the id otherwise)
    DIR/segments   <utterance-id> <recording-id> <start> <end>   (optional: seconds)

Without ``segments`` each utterance id is its recording id. Audio paths may be absolute, or
relative to the current folder (as Kaldi scripts run them) or to DIR. wav.scp entries that are
commands (``sox a.sph -t wav - |``) or archive offsets (``feats.ark:123``) are not run: they are
rejected with a message to convert them to files first. Segments are cut into FLAC files beside
the manifest. Bad entries are reported and skipped as in :mod:`asr.data.jsonl`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rich.console import Console

from asr.data.jsonl import Entry, finish
from asr.data.librispeech import MALFORMED, NO_AUDIO, NO_TRANSCRIPT, PrepareError, PrepareReport

PIPE = "command pipe"
ARCHIVE = "archive entry"
_ARK_OFFSET = re.compile(r"\.ark:\d+$")


def prepare_kaldi(
    data_dir: str | Path, out_dir: str | Path, *, name: str | None = None, normalizer: str = "librispeech",
    console: Console | None = None,
) -> PrepareReport:  # fmt: skip
    """Read DIR's wav.scp, text, utt2spk and segments; write ``<out_dir>/<name>.jsonl`` (name: DIR's name)."""
    data_dir = Path(data_dir)
    for required in ("wav.scp", "text"):
        if not (data_dir / required).is_file():
            raise PrepareError(f"{data_dir / required} not found: a Kaldi data directory needs wav.scp and text")
    rejections: list[tuple[str, str]] = []
    recordings = _recordings(data_dir, rejections)
    texts = _table(data_dir / "text", rejections)
    speakers = _table(data_dir / "utt2spk", rejections) if (data_dir / "utt2spk").is_file() else {}
    segments = _segments(data_dir / "segments", rejections) if (data_dir / "segments").is_file() else None
    entries, used = [], set()
    for utt_id, (text, where) in texts.items():
        recording, start, end = segments[utt_id] if segments and utt_id in segments else (utt_id, None, None)
        if segments is not None and utt_id not in segments:
            rejections.append((where, "no segment"))
            continue
        if recording not in recordings:
            rejections.append((where, NO_AUDIO))
            continue
        used.add(recording)
        if recordings[recording] is None:  # a pipe or an archive: already reported
            continue
        speaker = speakers.get(utt_id, (None, ""))[0]
        entries.append(Entry(utt_id, recordings[recording], text, where, speaker, start, end))  # type: ignore[arg-type]
    rejections += [(str(path), NO_TRANSCRIPT) for rec, path in recordings.items() if rec not in used and path]
    refused = sum(1 for _, reason in rejections if reason in (PIPE, ARCHIVE))
    if refused and console is not None:
        console.print(f"[yellow]{refused} wav.scp entries are command pipes or archive entries, which asr does "
                      "not run: write that audio to files (e.g. with sox) and list the files in wav.scp")  # fmt: skip
    return finish(name or data_dir.name, entries, rejections, Path(out_dir), normalizer, console)


def _lines(path: Path) -> list[tuple[str, str, str]]:
    """(where, first field, rest of the line) of each non-blank line."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if line.strip():
            key, _, rest = line.strip().partition(" ")
            found.append((f"{path}:{number}", key, rest.strip()))
    return found


def _recordings(data_dir: Path, rejections: list[tuple[str, str]]) -> dict[str, Path | None]:
    """wav.scp: recording id -> audio path, or None for a pipe/archive entry (rejected here)."""
    recordings: dict[str, Path | None] = {}
    for where, key, rest in _lines(data_dir / "wav.scp"):
        if not rest:
            rejections.append((where, MALFORMED))
        elif rest.endswith("|"):
            rejections.append((where, PIPE))
            recordings[key] = None
        elif _ARK_OFFSET.search(rest):
            rejections.append((where, ARCHIVE))
            recordings[key] = None
        else:
            path = Path(rest)
            if not path.is_absolute() and not path.exists() and (data_dir / path).exists():
                path = data_dir / path
            recordings[key] = Path(os.path.abspath(path))
    return recordings


def _table(path: Path, rejections: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """text / utt2spk: utterance id -> (value, where). An empty value stays (checked later)."""
    table: dict[str, tuple[str, str]] = {}
    for where, key, rest in _lines(path):
        if key in table:
            rejections.append((where, "duplicate utterance id"))
        else:
            table[key] = (rest, where)
    return table


def _segments(path: Path, rejections: list[tuple[str, str]]) -> dict[str, tuple[str, float, float]]:
    """segments: utterance id -> (recording id, start, end) seconds."""
    found = {}
    for where, key, rest in _lines(path):
        fields = rest.split()
        try:
            recording, start, end = fields[0], float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            rejections.append((where, MALFORMED))
            continue
        found[key] = (recording, start, end)
    return found
