"""Tar shards of a manifest's audio, for corpora whose files are too many to open one by one.

``asr prepare shards`` screens the manifest's audio exactly as training does (asr.data.screen:
the same reasons, the same ``rejected.tsv``), shuffles the usable utterances with a seed (so a
shard is not one speaker), and writes them into plain POSIX tar files of about ``shard_seconds``
of audio each, every member the original file's bytes (``tar tf`` lists them, ``tar x`` gives
playable files). Beside the shards:

    shards.json        format, source manifest and its SHA-256, the shard files (written last:
                       its presence means the folder is complete)
    utterances.jsonl   the usable utterances, in the source manifest's order, each a manifest
                       record (read_manifest reads it) plus "shard", "offset" and "size": where
                       its bytes lie in which shard
    rejected.tsv       the utterances left out, with the reason (asr.data.screen's format)

Knowing every member's place lets a reader read a shard front to back (asr.data.shard_stream)
and still seek one utterance (CMVN statistics on a sample).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.console import Console

from asr import files
from asr.audio import decode_audio
from asr.data.manifest import Utterance, parse_record
from asr.data.screen import usable_utterances

FORMAT = "asr-shards/1"
INDEX = "shards.json"
UTTERANCES = "utterances.jsonl"
REJECTED = "rejected.tsv"


class ShardError(ValueError):
    """A shard folder that is incomplete, damaged or of another format."""


@dataclass(frozen=True)
class Location:
    shard: int  # index into ShardIndex.files
    offset: int  # first byte of the member's data in the tar file
    size: int  # bytes


@dataclass(frozen=True)
class ShardIndex:
    """A shard folder as read back: the utterances (source order) and where each one lies."""

    root: Path
    files: tuple[str, ...]  # shard file names, relative to root
    utterances: tuple[Utterance, ...]
    locations: tuple[Location, ...]  # aligned with utterances

    @property
    def manifest(self) -> Path:
        """utterances.jsonl: a manifest of the usable utterances (their original audio paths)."""
        return self.root / UTTERANCES

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED

    def path(self, shard: int) -> Path:
        return self.root / self.files[shard]

    def audio(self, sample_rate: int) -> ShardAudio:
        """Utterance -> waveform by seeking in its shard (picklable, for DataLoader workers)."""
        return ShardAudio(self.root, self.files, {u.id: loc for u, loc in zip(self.utterances, self.locations)}, sample_rate)


@dataclass(frozen=True)
class ShardAudio:
    root: Path
    files: tuple[str, ...]
    where: dict[str, Location]
    sample_rate: int

    def __call__(self, utt: Utterance) -> torch.Tensor:
        loc = self.where[utt.id]
        with open(self.root / self.files[loc.shard], "rb") as f:
            data = read_at(f, loc, self.files[loc.shard])
        return decode_audio(io.BytesIO(data), f"{self.files[loc.shard]}:{utt.id}", self.sample_rate)[0]


def read_at(f: io.BufferedReader, loc: Location, name: str) -> bytes:
    """One member's bytes from the open shard ``f``; a short read is a ShardError."""
    f.seek(loc.offset)
    data = f.read(loc.size)
    if len(data) != loc.size:
        raise ShardError(f"{name}: truncated (member at byte {loc.offset} needs {loc.size} bytes, got {len(data)})")
    return data


def write_shards(
    manifest: str | Path, out: str | Path, *, shard_seconds: float = 3600.0, seed: int = 0,
    num_workers: int = 2, console: Console | None = None,
) -> ShardIndex:
    """Write the usable utterances of ``manifest`` as tar shards in ``out`` (see the module
    docstring); a folder already holding the shards of the same manifest content and settings is
    left as it is."""
    if shard_seconds <= 0:
        raise ValueError(f"--shard-seconds must be positive, got {shard_seconds}")
    manifest, out = Path(manifest), Path(out)
    settings = {"format": FORMAT, "manifest": str(manifest.resolve()),
                "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                "shard_seconds": shard_seconds, "seed": seed}  # fmt: skip
    if (out / INDEX).is_file() and _settings(out / INDEX) == settings:
        return read_shards(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / INDEX).unlink(missing_ok=True)  # incomplete until rewritten
    usable = usable_utterances(manifest, out / REJECTED, num_workers, console)
    if not usable:
        raise ShardError(f"{manifest}: no utterance with usable audio to write")
    groups = _cut(usable, shard_seconds, seed)
    names = [f"shard-{k:06d}.tar" for k in range(len(groups))]
    locations: dict[int, Location] = {}
    for k, (name, group) in enumerate(zip(names, groups)):
        locations.update(_write_tar(out / name, k, [(i, usable[i]) for i in group]))
    records = [json.dumps({**asdict(u), **asdict(locations[i])}, ensure_ascii=False) for i, u in enumerate(usable)]
    files.write_lines(out / UTTERANCES, records)
    files.write_json(out / INDEX, {**settings, "shards": names, "utterances": len(usable)}, indent=1)
    return read_shards(out)


def _settings(index: Path) -> dict:
    record = json.loads(index.read_text())
    return {key: record.get(key) for key in ("format", "manifest", "manifest_sha256", "shard_seconds", "seed")}


def _cut(usable: list[Utterance], shard_seconds: float, seed: int) -> list[list[int]]:
    """Shuffled utterance indices cut into groups of about ``shard_seconds`` of audio each."""
    order = list(range(len(usable)))
    random.Random(seed).shuffle(order)
    groups: list[list[int]] = [[]]
    seconds = 0.0
    for i in order:
        if groups[-1] and seconds + usable[i].duration > shard_seconds:
            groups.append([])
            seconds = 0.0
        groups[-1].append(i)
        seconds += usable[i].duration
    return groups


def _write_tar(path: Path, shard: int, members: list[tuple[int, Utterance]]) -> dict[int, Location]:
    """Write one shard (atomically); members are named by utterance index and keep the audio
    file's suffix. Returns index -> where its bytes lie."""
    with files.atomic_path(path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for index, utt in members:
                data = Path(utt.audio).read_bytes()
                info = tarfile.TarInfo(f"{index:09d}{Path(utt.audio).suffix.lower() or '.audio'}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644  # same bytes on every run
                tar.addfile(info, io.BytesIO(data))
        with tarfile.open(tmp) as tar:  # where each member's data landed
            where = {int(m.name.split(".")[0]): Location(shard, m.offset_data, m.size) for m in tar.getmembers()}
    return where


def read_shards(root: str | Path) -> ShardIndex:
    """Read a folder written by ``write_shards``; errors name the file and what is wrong."""
    root = Path(root)
    index = root / INDEX
    if not index.is_file():
        raise ShardError(f"{root}: no {INDEX} (not a shard folder, or `asr prepare shards` did not finish)")
    record = json.loads(index.read_text())
    if record.get("format") != FORMAT:
        raise ShardError(f"{index}: format {record.get('format')!r}, expected {FORMAT!r}")
    names = tuple(record["shards"])
    for name in names:
        if not (root / name).is_file():
            raise ShardError(f"{root / name}: missing (listed in {index})")
    utterances, locations = [], []
    for number, line in enumerate(files.read_text_lines(root / UTTERANCES), start=1):
        fields = json.loads(line)
        utterances.append(parse_record(fields, f"{root / UTTERANCES}:{number}"))
        locations.append(Location(int(fields["shard"]), int(fields["offset"]), int(fields["size"])))
    return ShardIndex(root, names, tuple(utterances), tuple(locations))
