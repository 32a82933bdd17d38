"""Manifests: one JSON object per line describing one utterance."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w") as f:
        for utt in utterances:
            f.write(json.dumps(asdict(utt), ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest; a bad line is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    fields = set(Utterance.__dataclass_fields__)
    utterances = []
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            missing = fields - set(record)
            if missing:
                raise ManifestError(f"{path}:{number}: missing field(s) {', '.join(sorted(missing))}")
            utterances.append(Utterance(**{k: record[k] for k in fields}))
    return utterances


def manifest_texts(paths: Iterable[str | Path]) -> Iterable[str]:
    """The transcripts of every utterance of the manifests ``paths``, in order (for tokenizers)."""
    for path in paths:
        for utt in read_manifest(path):
            yield utt.text
