"""Download and unpack LibriSpeech subsets from OpenSLR (resource 12).

One subset is one tarball, ``<base_url>/<subset>.tar.gz``, which unpacks to
``LibriSpeech/<subset>/<speaker>/<chapter>/``. The steps are restartable:

1. fetch into ``<root>/<subset>.tar.gz.part``, resuming an interrupted transfer with an HTTP Range
   request, then verify its SHA-256 and rename it to ``<subset>.tar.gz``;
   A transfer never writes more than the archive's known size (``SIZES``): a server that sends
   more is refused, and what it sent in that response is cut off again, so the ``.part`` file
   keeps only the bytes of earlier, interrupted transfers that a resume builds on;
2. check every member of the archive stays inside ``root``, then extract it;
3. write ``LibriSpeech/<subset>/.complete`` so a rerun skips the subset. A subset folder without
   it is half-extracted (a killed or failed run): preparation refuses it, and a download removes
   and extracts it again. A full disk removes the partial file or folder and says so.

Mirrors: OpenSLR lists mirrors for each resource on https://www.openslr.org/12 (e.g. US
https://us.openslr.org/resources/12, EU https://openslr.elda.org/resources/12, CN
https://openslr.magicdatatech.com/resources/12); pass one as ``base_url`` if the main site is slow.
The archives are identical, so the same checksums apply.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from asr import files
from asr.files import DiskFullError

OFFICIAL_URL = "https://www.openslr.org/resources/12"

# SHA-256 of each official tarball, as listed by torchaudio.datasets.librispeech (_CHECKSUMS).
CHECKSUMS: dict[str, str] = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
SUBSETS: tuple[str, ...] = tuple(CHECKSUMS)
# Size in bytes of each official tarball, from tensorflow-datasets 4.9.10
# (tensorflow_datasets/datasets/librispeech/checksums.tsv, whose SHA-256 column matches CHECKSUMS).
# A download never writes more than this: a mirror that streams without Content-Length, or past
# the end of the file, is stopped here instead of filling the disk.
SIZES: dict[str, int] = {
    "dev-clean": 337_926_286,
    "dev-other": 314_305_928,
    "test-clean": 346_663_984,
    "test-other": 328_757_843,
    "train-clean-100": 6_387_309_499,
    "train-clean-360": 23_049_477_885,
    "train-other-500": 30_593_501_606,
}

COMPLETE_MARKER = ".complete"
_CHUNK = 1 << 20  # 1 MiB reads: large enough to be fast, small enough for a smooth progress bar
_RETRIES = 3  # whole-transfer attempts; each one resumes from what the previous one wrote
# Network failures worth retrying (HTTP errors below 500 are not: they would fail again).
_TRANSIENT = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


class DownloadError(RuntimeError):
    """A download, checksum or extraction failure; the message names the file or URL."""


def download_subset(
    subset: str,
    root: str | Path,
    base_url: str = OFFICIAL_URL,
    checksums: dict[str, str] = CHECKSUMS,
    console: Console | None = None,
    sizes: dict[str, int] = SIZES,
) -> Path:
    """Fetch, verify and extract one LibriSpeech subset; return ``root/LibriSpeech/<subset>``.

    Does nothing when the subset was already extracted completely by an earlier call.
    """
    console = console or Console()
    if subset not in checksums:
        raise DownloadError(f"unknown subset {subset!r}; known subsets: {', '.join(checksums)}")
    root = Path(root)
    subset_dir = root / "LibriSpeech" / subset
    if (subset_dir / COMPLETE_MARKER).is_file():
        console.print(f"{subset}: already downloaded and extracted in {subset_dir}")
        return subset_dir

    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{subset}.tar.gz"
    if not archive.is_file():
        part = archive.with_name(archive.name + ".part")
        url = f"{base_url.rstrip('/')}/{subset}.tar.gz"
        _fetch_with_retries(url, part, console, max_bytes=sizes.get(subset))
        verify_sha256(part, checksums[subset], console, name=archive.name)
        part.replace(archive)
    else:
        # An archive left by an earlier run or copied in by hand is checked too.
        verify_sha256(archive, checksums[subset], console)

    if subset_dir.exists():  # half-extracted by an earlier run (no marker): start it over
        console.print(f"{subset}: {subset_dir} is incomplete (no {COMPLETE_MARKER}); extracting it again")
        shutil.rmtree(subset_dir)
    try:
        extract_tar(archive, root, console)
    except DiskFullError:
        shutil.rmtree(subset_dir, ignore_errors=True)  # no partial subset left behind
        raise
    if not subset_dir.is_dir():
        raise DownloadError(f"{archive}: did not contain LibriSpeech/{subset}/")
    mark_complete(subset_dir)
    return subset_dir


def mark_complete(subset_dir: Path) -> None:
    """Record that ``subset_dir`` is whole: only then does preparation use it."""
    files.write_text(subset_dir / COMPLETE_MARKER, "")


def _fetch_with_retries(url: str, part: Path, console: Console, max_bytes: int | None = None) -> None:
    for attempt in range(1, _RETRIES + 1):
        try:
            fetch(url, part, console, max_bytes)
            return
        except _TRANSIENT as err:
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
            if attempt == _RETRIES:
                reason = getattr(err, "reason", err)
                raise DownloadError(
                    f"{url}: download failed after {attempt} attempts ({reason})"
                ) from None
            console.print(f"[yellow]{url}: {err}; resuming (attempt {attempt + 1}/{_RETRIES})")


def fetch(url: str, part: Path, console: Console | None = None, max_bytes: int | None = None) -> None:
    """Download ``url`` into ``part``, appending to what an interrupted transfer left there.

    With ``max_bytes`` (the file's known size) ``part`` never grows past it: a longer answer is a
    DownloadError, and the bytes of that answer are cut off again. An answer without
    Content-Length that ends short of it is a cut connection (ConnectionError, resumable).
    """
    console = console or Console()
    offset = part.stat().st_size if part.exists() else 0
    if max_bytes is not None and offset > max_bytes:
        part.unlink()  # longer than the file can be (an unbounded earlier download): not a start
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as err:
        # 416: nothing left past ``offset``, i.e. the .part file is already whole (the checksum
        # decides whether it is also right).
        if err.code == 416 and offset:
            return
        raise
    with response:
        offset = _resume_offset(url, part, response, offset)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(
                f"{url}: the server announces {total:,} bytes, but the file is {max_bytes:,} bytes; "
                "nothing was written, use another --base-url"
            )
        _receive(url, response, part, offset, total, max_bytes, console)
    # Without Content-Length, an answer that ends before the known size was cut off: resumable.
    expected = total if total is not None else max_bytes
    if expected is not None and part.stat().st_size != expected:
        raise ConnectionError(f"connection closed after {part.stat().st_size} of {expected} bytes")


def _resume_offset(url: str, part: Path, response: http.client.HTTPResponse, offset: int) -> int:
    """Where this response's bytes go in ``part``: ``offset``, or 0 for a whole-file answer."""
    content_range = response.headers.get("Content-Range", "")
    if offset and response.status != 206:
        return 0  # the server ignored the Range header and is sending the whole file: start over
    if offset and not content_range.startswith(f"bytes {offset}-"):
        raise DownloadError(
            f"{url}: asked to resume at byte {offset}, server sent {content_range!r}; "
            f"delete {part} to start over"
        )
    return offset


def _receive(
    url: str, response: http.client.HTTPResponse, part: Path, offset: int, total: int | None,
    max_bytes: int | None, console: Console,
) -> None:
    """Append the body to ``part`` from ``offset``, stopping past ``max_bytes``."""
    name = part.name.removesuffix(".part")
    room = None if max_bytes is None else max_bytes - offset
    received = 0
    try:
        with _byte_progress(console) as progress, part.open("ab" if offset else "wb") as f:
            task = progress.add_task(name, total=total or max_bytes, completed=offset)
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                if room is not None and received > room:
                    break
                _append(f, chunk)
                progress.advance(task, len(chunk))
            else:
                return
    except OSError as err:
        if err.errno == errno.ENOSPC:
            part.unlink(missing_ok=True)  # a full disk must not stay full of a partial file
        files.raise_fixable(err, part)
        raise
    # More than the whole file, so not this file: drop this answer, keep what earlier ones wrote.
    if offset:
        os.truncate(part, offset)
        kept = f" ({part} keeps the {offset:,} bytes of an earlier transfer, for a resume)"
    else:
        part.unlink()
        kept = ""
    raise DownloadError(
        f"{url}: the server sent more than the {max_bytes:,} bytes of {name}; stopped there and "
        f"discarded what it sent{kept}; use another --base-url"
    )


def _append(f: BinaryIO, chunk: bytes) -> None:
    f.write(chunk)  # one place for every downloaded byte (the tests' full-disk wrapper hooks it)


def _byte_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # a failed download ends in its one error line, with no bar above it
    )


def verify_sha256(
    path: Path, expected: str, console: Console | None = None, name: str = ""
) -> None:
    """Check a file's SHA-256; on a mismatch delete it (so a rerun fetches it again) and raise."""
    console = console or Console()
    digest = hashlib.sha256()
    with console.status(f"verifying {name or path.name}"), path.open("rb") as f:
        while chunk := f.read(4 * _CHUNK):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected.lower():
        path.unlink()
        raise DownloadError(
            f"{name or path.name}: checksum mismatch (expected sha256 {expected}, got {actual}); "
            "the file was deleted, run again to download it afresh"
        )


def _inside(path: str, root: Path) -> bool:
    # Lexical check (no filesystem access): the archive's own links do not exist yet.
    return Path(os.path.normpath(path)).is_relative_to(root)


def _unsafe_reason(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why extracting ``member`` under ``root`` could write outside it (None if it cannot)."""
    if os.path.isabs(member.name) or member.name.startswith(("/", "\\")):
        return "absolute path"
    if ".." in Path(member.name).parts:
        return "'..' in path"
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            return "link to an absolute path"
        # A symlink's target is relative to its own folder, a hard link's to the archive root.
        base = (root / member.name).parent if member.issym() else root
        if not _inside(str(base / member.linkname), root):
            return "link pointing outside the destination"
    elif not (member.isfile() or member.isdir()):
        return "device or other special file"
    return None


def extract_tar(archive: Path, root: Path, console: Console | None = None) -> None:
    """Extract ``archive`` into ``root``, refusing the whole archive if any member is unsafe.

    Every member is checked before anything is written, so an archive with an absolute path, a
    '..' or a link leading out of ``root`` is refused untouched. tarfile's 'data' filter then
    re-checks each member against the real filesystem as it is written (defence in depth: it also
    catches a chain of links that only leads outside once the earlier links exist).
    """
    console = console or Console()
    root = Path(os.path.abspath(root))
    try:
        with tarfile.open(archive, "r:*") as tar:
            with console.status(f"checking {archive.name}"):
                members = tar.getmembers()
            for member in members:
                reason = _unsafe_reason(member, root)
                if reason:
                    raise DownloadError(
                        f"{archive}: unsafe member {member.name!r} ({reason}); "
                        "nothing was extracted"
                    )
            with Progress(
                TextColumn("extracting {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task(archive.name, total=len(members))
                for member in members:
                    tar.extract(member, root, filter="data")
                    progress.advance(task)
    except OSError as err:
        files.raise_fixable(err, root)
        raise DownloadError(f"{archive}: cannot extract ({err})") from None
    except (tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{archive}: cannot extract ({err})") from None
