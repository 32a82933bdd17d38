"""Screen a manifest's audio before training: unusable utterances are left out and listed.

A manifest may come from anywhere (``asr prepare`` checks its own, a hand-made one is not
checked), and one NaN sample would turn the CMVN statistics into NaN and every loss with them.
So training reads each utterance's audio once, block by block, and leaves out what cannot be
used: unreadable or truncated files, non-finite samples, silence under a non-empty transcript.
The rejections are written as ``id<TAB>audio<TAB>reason`` lines under a header that holds the
manifest's SHA-256; a later run (a resume) reuses that list while the manifest is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf
from rich.console import Console

from asr import files
from asr.audio import scan_file
from asr.data.librispeech import TRUNCATED, UNREADABLE
from asr.data.manifest import Utterance, read_manifest
from asr.progress import counting_progress

_HEADER = "# manifest sha256 "


def audio_problem(utt: Utterance) -> str | None:
    """Why ``utt``'s audio cannot be trained on, or None (decodes the whole file)."""
    try:
        f = sf.SoundFile(os.fsencode(utt.audio))
    except (sf.SoundFileError, RuntimeError, OSError):
        return UNREADABLE
    with f:
        try:
            frames, problem = scan_file(f, expect_speech=bool(utt.text.strip()))
        except (sf.SoundFileError, RuntimeError):
            return TRUNCATED
        return TRUNCATED if frames != f.frames else problem


def screen(
    utterances: list[Utterance], num_workers: int = 2, console: Console | None = None
) -> list[tuple[Utterance, str]]:
    """The utterances whose audio cannot be used, each with its reason, in manifest order."""
    progress = counting_progress(console or Console(quiet=True), transient=True)
    rejected = []
    # Threads suffice: libsndfile is called through cffi, which releases the GIL.
    with progress, ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        task = progress.add_task("checking audio", total=len(utterances))
        for utt, problem in zip(utterances, pool.map(audio_problem, utterances), strict=True):
            progress.advance(task)
            if problem:
                rejected.append((utt, problem))
    return rejected


def usable_utterances(
    manifest: str | Path, report: str | Path, num_workers: int = 2, console: Console | None = None
) -> list[Utterance]:
    """The utterances of ``manifest`` whose audio can be used; the others are listed in ``report``
    (reused, without reading any audio, while it names the same manifest content)."""
    manifest, report = Path(manifest), Path(report)
    utterances = read_manifest(manifest)
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    rejected = _read_report(report, digest)
    if rejected is not None:  # screened before; its warning was shown then
        return [u for u in utterances if u.id not in rejected]
    rejected = {utt.id: reason for utt, reason in screen(utterances, num_workers, console)}
    lines = [f"{_HEADER}{digest}", "id\taudio\treason"]
    lines += [f"{u.id}\t{u.audio}\t{rejected[u.id]}" for u in utterances if u.id in rejected]
    files.write_lines(report, lines)
    if rejected and console is not None:
        console.print(
            f"[yellow]{manifest}: left out {len(rejected)} of {len(utterances)} utterances whose "
            f"audio cannot be used; listed with the reason in {report}[/yellow]"
        )
    return [u for u in utterances if u.id not in rejected]


def _read_report(report: Path, digest: str) -> dict[str, str] | None:
    """id -> reason from an earlier screening of the same manifest content, else None."""
    if not report.is_file():
        return None
    lines = files.read_text_lines(report)
    if not lines or lines[0] != f"{_HEADER}{digest}":
        return None
    rows = [line.split("\t") for line in lines[2:] if line]
    return {row[0]: row[-1] for row in rows}
