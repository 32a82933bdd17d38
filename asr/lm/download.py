"""`asr lm download`: the LibriSpeech LM corpus (OpenSLR resource 11), through the same
resumable, checksum-verified fetch as the audio subsets (asr.data.download).

``librispeech-lm-norm.txt.gz`` holds about 40M normalised sentences from ~14.5k Project
Gutenberg books, the books of dev and test left out (Panayotov et al., 2015, section 3.3); it
stays gzipped (``asr lm train --text`` reads .gz).

OpenSLR publishes no checksum for it, so none is built in. With ``--sha256`` the download must
match it. Without, the SHA-256 of the first complete download is written next to the file
(``<name>.sha256``) and printed; every later run checks the file against that record, so a
truncated or altered file is never used silently.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rich.console import Console

from asr import files
from asr.data.download import DownloadError, _fetch_with_retries, verify_sha256

LM_URL = "https://www.openslr.org/resources/11"
LM_CORPUS = "librispeech-lm-norm.txt.gz"
# Its size in bytes, from tensorflow-datasets 4.9.10 (datasets/librispeech_lm/checksums.tsv): the
# download stops there rather than fill the disk from a mirror that streams without an end.
LM_CORPUS_BYTES = 1_507_274_412


def download_lm_corpus(
    out_dir: str | Path, base_url: str = LM_URL, sha256: str | None = None, console: Console | None = None
) -> Path:
    """Fetch ``<base_url>/librispeech-lm-norm.txt.gz`` into ``out_dir`` (resuming a partial
    download) and verify it; return its path. A verified file is not fetched again."""
    console = console or Console()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LM_CORPUS
    record = target.with_name(target.name + ".sha256")
    expected = sha256 or (record.read_text().strip() if record.is_file() else None)
    if target.is_file():
        if expected is None:
            raise DownloadError(f"{target} exists but no checksum is known for it: pass --sha256, or delete it")
        verify_sha256(target, expected, console)
        return target
    part = target.with_name(target.name + ".part")
    _fetch_with_retries(f"{base_url.rstrip('/')}/{LM_CORPUS}", part, console, max_bytes=LM_CORPUS_BYTES)
    if expected is not None:
        verify_sha256(part, expected, console, name=target.name)
    else:
        expected = _sha256(part)
        console.print(f"{LM_CORPUS}: sha256 {expected} (recorded in {record.name}; no published checksum)")
    files.write_text(record, expected + "\n")
    part.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
