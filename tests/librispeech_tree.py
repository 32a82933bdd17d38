"""Test helper: a LibriSpeech-layout tree with exact, known contents (waveforms or tones).

Lives with the tests (not in the package): it writes audio and transcripts as given, without the
checks the toolkit makes, so tests can build both good and deliberately broken corpora.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator, Sequence
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


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (and root itself) with its kind and mode, size, mtime, ctime, inode
    and, for files, SHA-256: any file written, added, removed, replaced, or created and deleted
    again (its folder's mtime moves) changes it. Access times are left out: reading is allowed."""
    state = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        state[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, digest)
    return state


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[bool]:
    """``root`` unwritable while inside: ``chmod -R a-w``, and, since root ignores permission bits,
    also bind-mounted read-only onto itself where the machine allows. Yields whether it is mounted
    read-only (tests also compare ``tree_state`` before and after, which holds in every case)."""
    paths = [root, *root.rglob("*")]
    modes = {path: path.stat().st_mode for path in paths}
    for path in paths:
        path.chmod(modes[path] & ~0o222)
    mounted = _bind_read_only(root)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(root)], check=True)
        for path in reversed(paths):
            path.chmod(modes[path])


def _bind_read_only(root: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None or os.environ.get("ASR_TEST_NO_MOUNT"):
        return False
    if subprocess.run(["mount", "--bind", str(root), str(root)], capture_output=True).returncode:
        return False
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], capture_output=True).returncode:
        subprocess.run(["umount", str(root)], check=False)
        return False
    return True
