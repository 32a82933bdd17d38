"""Manifests: one JSON object per line describing one utterance.

Reading is strict, so a hand-edited or foreign manifest fails at once with its file and line
rather than deep inside training or decoding: every field must be present with the right type,
durations finite and not negative, no id may appear twice, and none may hold a control
character (a TAB or a newline would split it in the id<TAB>text files written from it).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from asr import files


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str  # absolute path
    duration: float  # seconds
    sample_rate: int
    speaker: str
    chapter: str
    text: str


class ManifestError(ValueError):
    """A manifest line that is not a valid utterance record."""


def write_manifest(utterances: Iterable[Utterance], path: str | Path) -> int:
    """Write utterances as JSONL (atomically: a crash never leaves half a manifest)."""
    lines = [json.dumps(asdict(utt), ensure_ascii=False) for utt in utterances]
    files.write_lines(path, lines)
    return len(lines)


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest; a bad line or a repeated id is an error naming the file and line(s)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    utterances = []
    first_line: dict[str, int] = {}  # id -> line it was first seen on
    for number, line in enumerate(files.read_text_lines(path), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
        utt = parse_record(record, where)
        if utt.id in first_line:
            raise ManifestError(
                f"{where}: duplicate id {utt.id!r} (first at line {first_line[utt.id]}); "
                "every utterance id must be unique"
            )
        first_line[utt.id] = number
        utterances.append(utt)
    return utterances


def manifest_texts(paths: Iterable[str | Path]) -> Iterable[str]:
    """The transcripts of every utterance of the manifests ``paths``, in order (for tokenizers)."""
    for path in paths:
        for utt in read_manifest(path):
            yield utt.text
def parse_record(record: Any, where: str) -> Utterance:
    """One manifest record -> an Utterance, or a ManifestError naming ``where`` and the field."""
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = sorted(set(Utterance.__dataclass_fields__) - set(record))
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    values = {name: _field(record, name, where) for name in Utterance.__dataclass_fields__}
    return Utterance(**values)


def _field(record: dict, name: str, where: str) -> Any:
    value = record[name]
    if name in ("duration", "sample_rate"):
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if name == "sample_rate" and not (isinstance(value, int) and value > 0 and number_ok):
            raise ManifestError(f"{where}: sample_rate must be a positive integer, got {value!r}")
        if not number_ok or not math.isfinite(value) or value < 0:
            raise ManifestError(f"{where}: duration must be a number of seconds >= 0, got {value!r}")
        return float(value) if name == "duration" else value
    if name in ("speaker", "chapter") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric LibriSpeech-style ids written without quotes
    if not isinstance(value, str):
        raise ManifestError(f"{where}: {name} must be a string, got {json.dumps(value)}")
    if name in ("id", "audio") and not value.strip():
        raise ManifestError(f"{where}: {name} is empty")
    if name == "id" and (problem := id_problem(value)):
        raise ManifestError(f"{where}: id {value!r} {problem}")
    return value


_NAMED = {"\t": "a TAB", "\n": "a newline", "\r": "a carriage return"}


def id_problem(utterance_id: str) -> str | None:
    """Why an utterance id cannot be used, or None. Ids are written into id<TAB>text files
    (hyp.txt, rejected.tsv) and read back by line and by column, so a control character (TAB,
    newline, ...) or a line separator would split one record into two."""
    for char in utterance_id:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            what = _NAMED.get(char, f"the control character U+{ord(char):04X}")
            return f"holds {what}; ids must be printable (letters, digits, '-', '_', ...)"
    return None
