"""A download stops at the archive's known size, whatever the mirror sends (issue 20, item 10).

A mirror that streams without Content-Length, or past the end of the file, must not fill the disk:
the .part file never grows past the size in ``asr.data.download.SIZES``, the command fails in one
line, and nothing of that answer is kept (only the bytes of an earlier, interrupted transfer
that a resume builds on).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from asr.data import download
from asr.data.download import DownloadError
from asr.lm import download as lm_download
from librispeech_tree import make_librispeech_tree
from reliability_kit import asr, assert_one_line_error
from tests.support.http_server import local_server

QUIET = Console(quiet=True)
JUNK = 8 << 20  # 8 MiB past the end: a test without the bound writes all of it


@pytest.fixture
def server(monkeypatch):
    with local_server(monkeypatch, resource=12) as httpd:
        yield httpd


@pytest.fixture
def archive(tmp_path: Path, server, monkeypatch) -> bytes:
    """A tiny dev-clean tarball served by ``server``, its checksum and size the official ones."""
    src = tmp_path / "src"
    make_librispeech_tree(src, "dev-clean", [("84", "121", "GO DO YOU HEAR", None)], complete=False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    data = buffer.getvalue()
    server.files["/resources/12/dev-clean.tar.gz"] = data
    monkeypatch.setitem(download.CHECKSUMS, "dev-clean", hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(download.SIZES, "dev-clean", len(data))
    return data


@pytest.fixture
def peak(monkeypatch) -> list[int]:
    """The largest size any downloaded file reached, in bytes (one element, updated per chunk)."""
    largest = [0]
    append = download._append

    def measured(f, chunk: bytes) -> None:
        append(f, chunk)
        largest[0] = max(largest[0], f.tell())

    monkeypatch.setattr(download, "_append", measured)
    return largest


def _prepare(root: Path, server, tmp_path: Path):
    return asr("prepare", "librispeech", "--root", root, "--subsets", "dev-clean", "--download",
               "--base-url", server.url, "--out", tmp_path / "m")  # fmt: skip


def test_a_mirror_streaming_past_the_end_without_length_is_stopped_at_the_size(tmp_path, server, archive, peak):
    server.send_length, server.junk_after = False, JUNK
    root = tmp_path / "data"
    assert_one_line_error(
        _prepare(root, server, tmp_path),
        f"{server.url}/dev-clean.tar.gz", f"more than the {len(archive):,} bytes of dev-clean.tar.gz",
    )
    assert peak[0] <= len(archive)
    assert sorted(p.name for p in root.iterdir()) == []  # no .part, no archive, no subset
    assert not (tmp_path / "m" / "dev-clean.jsonl").exists()


def test_a_resume_keeps_only_the_bytes_of_the_earlier_transfer(tmp_path, server, archive, peak):
    root = tmp_path / "data"
    root.mkdir()
    earlier = archive[:100]
    (root / "dev-clean.tar.gz.part").write_bytes(earlier)
    server.send_length, server.junk_after = False, JUNK
    line = assert_one_line_error(_prepare(root, server, tmp_path), "more than the", "keeps the 100 bytes")
    assert server.ranges == ["bytes=100-"]
    assert peak[0] <= len(archive)
    assert (root / "dev-clean.tar.gz.part").read_bytes() == earlier, line
    # A good mirror then finishes the same transfer.
    server.send_length, server.junk_after = True, 0
    assert _prepare(root, server, tmp_path).exit_code == 0
    assert server.ranges[-1] == "bytes=100-"


def test_a_mirror_announcing_more_than_the_archive_is_refused_before_writing(tmp_path, server, archive, peak):
    server.files["/resources/12/dev-clean.tar.gz"] = archive + b"\0" * JUNK  # Content-Length too
    root = tmp_path / "data"
    assert_one_line_error(_prepare(root, server, tmp_path), "announces", f"{len(archive):,} bytes")
    assert peak[0] == 0 and sorted(root.iterdir()) == []


def test_without_length_the_exact_archive_is_used_and_a_cut_one_resumed(tmp_path, server, archive):
    server.send_length = False
    server.drop_after = 200  # the first answer ends early, with no length to tell it was cut
    result = _prepare(tmp_path / "data", server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert server.ranges == [None, "bytes=200-"]  # resumed, not deleted by a checksum mismatch
    assert (tmp_path / "m" / "dev-clean.jsonl").read_text().count("\n") == 1


def test_a_part_file_longer_than_the_archive_is_discarded(tmp_path, server, archive):
    root = tmp_path / "data"
    root.mkdir()
    (root / "dev-clean.tar.gz.part").write_bytes(b"\0" * (len(archive) + 1))  # an unbounded old run
    assert _prepare(root, server, tmp_path).exit_code == 0
    assert server.ranges == [None]  # fetched afresh, not resumed past the end


def test_the_lm_corpus_download_is_bounded_too(tmp_path, monkeypatch, peak):
    with local_server(monkeypatch, resource=11) as lm_server:
        lm_server.files[f"/resources/11/{lm_download.LM_CORPUS}"] = b"sentence\n" * 100
        lm_server.send_length, lm_server.junk_after = False, JUNK
        monkeypatch.setattr(lm_download, "LM_CORPUS_BYTES", 900)
        with pytest.raises(DownloadError, match="more than the 900 bytes of librispeech-lm-norm.txt.gz"):
            lm_download.download_lm_corpus(tmp_path, lm_server.url, console=QUIET)
    assert peak[0] <= 900 and sorted(p.name for p in tmp_path.iterdir()) == []
