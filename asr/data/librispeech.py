"""LibriSpeech -> JSONL manifests, one per subset, with every bad input counted and listed.

A subset is read from ``<root>/LibriSpeech/<subset>`` (the layout the tarballs unpack to) or from
``<root>/<subset>``. Each chapter folder holds ``<speaker>-<chapter>.trans.txt``, whose lines are
``<speaker>-<chapter>-<NNNN> TRANSCRIPT``, and one audio file per line.

A subset is used only when it is known to be whole: it carries the ``.complete`` marker that a
finished extraction writes, or it is an official subset that matches the official counts
(asr.data.librispeech_check: a copy unpacked elsewhere, read-only or not), or ``trust_layout``
says to take it as it is (own data in LibriSpeech layout). Nothing is written under ``root``
except by a download; manifests go to ``out_dir`` only.

Nothing bad passes silently and nothing bad stops the run half-way: an utterance that cannot be
used is left out of ``<out_dir>/<subset>.jsonl`` and listed with its reason in
``<out_dir>/<subset>.rejected.tsv``.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
from rich.console import Console
from asr.progress import counting_progress
from rich.table import Table

from asr import files
from asr.audio import NONFINITE, SILENT, scan_file
from asr.data import librispeech_check
from asr.data.download import COMPLETE_MARKER, OFFICIAL_URL, SUBSETS, download_subset
from asr.data.librispeech_check import AUDIO_EXTENSIONS, shortfall, take_inventory
from asr.data.manifest import Utterance, write_manifest
from asr.text.normalize import normalize_text

# Rejection reasons, as written in the .rejected.tsv files and counted in the summary.
UNREADABLE = "unreadable audio"
TRUNCATED = "truncated audio"
EMPTY_AUDIO = "empty audio"
WRONG_RATE = "wrong sample rate"
NO_AUDIO = "no audio file"
NO_TRANSCRIPT = "no transcript"
EMPTY_TRANSCRIPT = "empty transcript"
MALFORMED = "malformed transcript line"
DUPLICATE = "duplicate utterance id"
NONFINITE_AUDIO = NONFINITE  # NaN or Inf samples (float WAV)
SILENT_AUDIO = SILENT  # nothing above -80 dBFS, though the transcript has words

_UTTERANCE_ID = re.compile(r"([0-9A-Za-z]+)-([0-9A-Za-z]+)-([0-9]+)")


class PrepareError(ValueError):
    """A missing root or subset, or an unknown subset name to download; one line naming it."""


@dataclass
class PrepareReport:
    """What became of one subset: utterances kept, their hours, and every rejection."""

    subset: str
    kept: int
    hours: float
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    manifest: Path | None = None


@dataclass(frozen=True)
class _Candidate:
    """A transcript line that names an existing audio file, still to be checked."""

    id: str
    speaker: str
    chapter: str
    text: str
    audio: Path


def find_subset(root: str | Path, subset: str) -> Path:
    """The folder of ``subset`` under ``root`` (tarball layout first), or a PrepareError."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise PrepareError(f"LibriSpeech root {root} not found; use --download to fetch the data")
    for candidate in (root / "LibriSpeech" / subset, root / subset):
        if candidate.is_dir():
            return candidate
    if (root / "LibriSpeech").is_dir():
        where = f"{root / 'LibriSpeech'} (expected {root / 'LibriSpeech' / subset})"
    else:
        where = f"{root} (expected {root / 'LibriSpeech' / subset} or {root / subset})"
    raise PrepareError(f"subset {subset} not found under {where}; use --download to fetch it")


def check_whole(subset: str, folder: Path, trust_layout: bool = False, console: Console | None = None) -> None:
    """A PrepareError unless ``folder`` is known to hold all of ``subset``; writes nothing.

    Known by the completion marker, by matching the official counts, or by ``trust_layout``.
    """
    if trust_layout or (folder / COMPLETE_MARKER).is_file():
        return
    official = librispeech_check.OFFICIAL_COUNTS.get(subset)
    if official is None:
        raise PrepareError(
            f"subset {subset} in {folder} has no completion marker ({COMPLETE_MARKER}) and is not an "
            f"official LibriSpeech subset, so nothing tells whether it is whole; pass --trust-layout "
            f"to use it as it is, or create {folder / COMPLETE_MARKER}"
        )
    with (console or Console()).status(f"{subset}: comparing {folder} with the official subset"):
        missing = shortfall(take_inventory(folder), official)
    if missing:
        raise PrepareError(
            f"{subset}: {missing}, in {folder}; it has no completion marker ({COMPLETE_MARKER}), so "
            f"it may be half-extracted or half-copied: use --download to extract it again, or "
            f"--trust-layout to use it as it is"
        )


def _whole_subset(root: Path, subset: str, trust_layout: bool, console: Console) -> Path:
    folder = find_subset(root, subset)
    check_whole(subset, folder, trust_layout, console)
    return folder


def prepare_librispeech(
    root: str | Path,
    subsets: list[str],
    out_dir: str | Path,
    *,
    download: bool = False,
    base_url: str = OFFICIAL_URL,
    num_workers: int = 4,
    sample_rate: int = 16000,
    console: Console | None = None,
    trust_layout: bool = False,
) -> dict[str, PrepareReport]:
    """Write ``out_dir/<subset>.jsonl`` (and ``.rejected.tsv``) for each subset; return the reports.

    With ``download``, subsets missing or incomplete under ``root`` are first fetched from
    ``base_url`` and extracted there. Audio is read by ``num_workers`` threads; every file must be
    at ``sample_rate``. ``trust_layout`` takes subsets without the completion marker as they are,
    unchecked (see ``check_whole``).
    """
    console = console or Console()
    root, out_dir = Path(root), Path(out_dir)
    if not 1 <= num_workers <= 64:
        raise PrepareError(f"--workers must be from 1 to 64, got {num_workers}")
    if not 1000 <= sample_rate <= 192000:
        raise PrepareError(f"--sample-rate must be from 1000 to 192000 Hz, got {sample_rate}")
    files.check_writable_dir(out_dir)  # before downloads and scans, not after them
    if download:
        unknown = [s for s in subsets if s not in SUBSETS]
        if unknown:
            raise PrepareError(
                f"unknown LibriSpeech subset {unknown[0]}; choose from {', '.join(SUBSETS)}"
            )
    folders = {}
    for subset in subsets:  # all found and checked before the (possibly long) scans
        try:
            folders[subset] = _whole_subset(root, subset, trust_layout, console)
        except PrepareError:
            if not download:
                raise
            download_subset(subset, root, base_url, console=console)
            folders[subset] = _whole_subset(root, subset, trust_layout, console)
    files.sweep_dead(out_dir)  # temporary files of a killed earlier run
    return {
        subset: _prepare_subset(subset, folder, out_dir, num_workers, sample_rate, console)
        for subset, folder in folders.items()
    }


def _prepare_subset(
    subset: str, folder: Path, out_dir: Path, num_workers: int, sample_rate: int, console: Console
) -> PrepareReport:
    candidates, rejections = _scan(folder)
    probe = functools.partial(_probe, sample_rate=sample_rate)
    utterances = []
    progress = counting_progress(console, transient=True)  # the summary table follows
    # Threads suffice: libsndfile is called through cffi, which releases the GIL.
    with progress, ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        task = progress.add_task(f"{subset}: reading audio", total=len(candidates))
        results = pool.map(probe, [c.audio for c in candidates])
        for cand, (frames, rate, reason) in zip(candidates, results, strict=True):
            progress.advance(task)
            if reason:
                rejections.append((str(cand.audio), reason))
                continue
            utterances.append(
                Utterance(
                    id=cand.id,
                    audio=str(cand.audio),
                    duration=frames / rate,
                    sample_rate=rate,
                    speaker=cand.speaker,
                    chapter=cand.chapter,
                    text=cand.text,
                )
            )

    utterances.sort(key=lambda u: u.id)
    rejections.sort()
    manifest = out_dir / f"{subset}.jsonl"
    write_manifest(utterances, manifest)
    _write_rejections(rejections, out_dir / f"{subset}.rejected.tsv")
    return PrepareReport(
        subset=subset,
        kept=len(utterances),
        hours=sum(u.duration for u in utterances) / 3600,
        rejected=dict(Counter(reason for _, reason in rejections)),
        rejections=rejections,
        manifest=manifest,
    )


def _scan(folder: Path) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    """Pair transcript lines with audio files. Returns the pairs still to check, and rejections."""
    audio_files = {p for ext in AUDIO_EXTENSIONS for p in folder.rglob(f"*{ext}") if p.is_file()}
    claimed: set[Path] = set()
    candidates: list[_Candidate] = []
    rejections: list[tuple[str, str]] = []
    seen: set[str] = set()  # across transcripts too: a copied chapter folder repeats its ids
    for transcript in sorted(folder.rglob("*.trans.txt")):
        prefix = transcript.name.removesuffix(".trans.txt")  # <speaker>-<chapter>
        # errors="replace": a stray non-UTF-8 byte must not abort the whole subset.
        lines = transcript.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{transcript}:{number}"
            utt_id, _, raw_text = line.strip().partition(" ")
            match = _UTTERANCE_ID.fullmatch(utt_id)
            if not match or f"{match[1]}-{match[2]}" != prefix:
                rejections.append((where, MALFORMED))
                continue
            if utt_id in seen:
                rejections.append((where, DUPLICATE))
                continue
            seen.add(utt_id)
            audio = _find_audio(transcript.parent, utt_id, audio_files)
            if audio is None:
                rejections.append((str(transcript.parent / f"{utt_id}.flac"), NO_AUDIO))
                continue
            claimed.add(audio)
            text = normalize_text(raw_text)
            if not text:
                rejections.append((str(audio), EMPTY_TRANSCRIPT))
                continue
            candidates.append(_Candidate(utt_id, match[1], match[2], text, audio))
    rejections.extend((str(p), NO_TRANSCRIPT) for p in sorted(audio_files - claimed))
    return candidates, rejections


def _find_audio(folder: Path, utt_id: str, audio_files: set[Path]) -> Path | None:
    for ext in AUDIO_EXTENSIONS:
        if (path := folder / f"{utt_id}{ext}") in audio_files:
            return path
    return None


def _probe(path: Path, sample_rate: int) -> tuple[int, int, str | None]:
    """``(frames, rate, None)`` for a good file, ``(0, 0, reason)`` for a bad one.

    The whole file is decoded, block by block: the header alone does not prove a file is whole
    (a truncated FLAC still announces its full length, and decoding stops short), nor that its
    samples are finite and not all silence. A cut WAV is reported by libsndfile at its real,
    shorter length, so it is kept as such.
    """
    try:
        f = sf.SoundFile(os.fsencode(path))
    except (sf.SoundFileError, RuntimeError):
        return 0, 0, UNREADABLE
    with f:
        frames, rate = f.frames, f.samplerate
        if rate != sample_rate:
            return 0, 0, WRONG_RATE
        if frames <= 0:
            return 0, 0, EMPTY_AUDIO
        try:
            decoded, problem = scan_file(f, expect_speech=True)
        except (sf.SoundFileError, RuntimeError):
            decoded, problem = 0, None
    if decoded != frames:
        return 0, 0, TRUNCATED
    return (0, 0, problem) if problem else (frames, rate, None)


def _write_rejections(rejections: list[tuple[str, str]], path: Path) -> None:
    files.write_lines(path, ["path\treason", *(f"{where}\t{reason}" for where, reason in rejections)])


def print_summary(reports: dict[str, PrepareReport], console: Console | None = None, title: str = "LibriSpeech manifests") -> None:
    """A table: per subset, utterances kept, hours, and the count of each rejection reason."""
    console = console or Console()
    reasons = sorted({reason for r in reports.values() for reason in r.rejected})
    table = Table(title=title)
    table.add_column("subset")
    table.add_column("utterances", justify="right")
    table.add_column("hours", justify="right")
    table.add_column("rejected", justify="right")
    for reason in reasons:
        table.add_column(reason, justify="right")
    for report in reports.values():
        table.add_row(
            report.subset,
            str(report.kept),
            f"{report.hours:.2f}",
            str(sum(report.rejected.values())),
            *(str(report.rejected.get(reason, 0)) for reason in reasons),
        )
    console.print(table)
    for report in reports.values():
        if report.rejected and report.manifest is not None:
            rejected_tsv = report.manifest.with_name(f"{report.subset}.rejected.tsv")
            console.print(f"[yellow]{report.subset}: rejected utterances listed in {rejected_tsv}")
