"""Download, resume, checksum and safe extraction against a local HTTP server."""

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from asr.data import download
from asr.data.download import CHECKSUMS, DownloadError, download_subset, extract_tar
from asr.data.librispeech import prepare_librispeech
from asr.data.manifest import read_manifest
from librispeech_tree import make_librispeech_tree
from tests.support.http_server import local_server

QUIET = Console(quiet=True)


@pytest.fixture
def server(monkeypatch):
    with local_server(monkeypatch, resource=12) as httpd:
        yield httpd


def _tarball(tmp_path: Path, subset: str = "dev-clean") -> bytes:
    """A tiny LibriSpeech-layout tarball, as OpenSLR ships it (top folder LibriSpeech/)."""
    src = tmp_path / "src"
    make_librispeech_tree(
        src,
        subset,
        [("84", "121123", "Go, do you hear?", None), ("84", "121123", "but in less", None)],
        complete=False,  # the marker is written by a finished extraction, not shipped
    )
    (src / "LibriSpeech" / "README.TXT").write_text("tiny\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    return buffer.getvalue()


def _serve(server, tmp_path: Path) -> tuple[bytes, dict[str, str]]:
    data = _tarball(tmp_path)
    server.files["/resources/12/dev-clean.tar.gz"] = data
    return data, {"dev-clean": hashlib.sha256(data).hexdigest()}


def test_official_checksums_cover_every_subset():
    assert set(CHECKSUMS) == {"train-clean-100", "train-clean-360", "train-other-500",
                              "dev-clean", "dev-other", "test-clean", "test-other"}  # fmt: skip
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in CHECKSUMS.values())
    assert download.OFFICIAL_URL == "https://www.openslr.org/resources/12"


def test_download_extract_prepare_end_to_end(server, tmp_path: Path, monkeypatch):
    data, sums = _serve(server, tmp_path)
    monkeypatch.setitem(CHECKSUMS, "dev-clean", sums["dev-clean"])  # the default prepare uses
    root = tmp_path / "data"
    reports = prepare_librispeech(
        root, ["dev-clean"], tmp_path / "m", download=True, base_url=server.url, console=QUIET
    )
    assert reports["dev-clean"].kept == 2 and reports["dev-clean"].rejected == {}
    utts = read_manifest(tmp_path / "m" / "dev-clean.jsonl")
    assert [u.text for u in utts] == ["GO DO YOU HEAR", "BUT IN LESS"]
    assert utts[0].audio == str(root / "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac")
    assert (root / "dev-clean.tar.gz").read_bytes() == data
    assert (root / "LibriSpeech" / "README.TXT").read_text() == "tiny\n"
    assert (root / "LibriSpeech" / "dev-clean" / ".complete").is_file()
    assert not (root / "dev-clean.tar.gz.part").exists()
    assert server.ranges == [None]

    # A rerun finds the subset and fetches nothing.
    prepare_librispeech(
        root, ["dev-clean"], tmp_path / "m", download=True, base_url=server.url, console=QUIET
    )
    assert (
        download_subset("dev-clean", root, server.url, sums, console=QUIET)
        == root / "LibriSpeech/dev-clean"
    )
    assert server.ranges == [None]


def test_resume_sends_range_and_appends(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    half = len(data) // 2
    (root / "dev-clean.tar.gz.part").write_bytes(data[:half])
    subset = download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert server.ranges == [f"bytes={half}-"]
    assert (root / "dev-clean.tar.gz").read_bytes() == data
    assert sorted(p.name for p in (subset / "84" / "121123").iterdir()) == [
        "84-121123-0000.flac", "84-121123-0001.flac", "84-121123.trans.txt",
    ]  # fmt: skip


def test_dropped_connection_is_resumed_by_a_retry(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    server.drop_after = 1000
    download_subset("dev-clean", tmp_path / "data", server.url, sums, console=QUIET)
    assert server.ranges == [None, "bytes=1000-"]
    assert (tmp_path / "data" / "dev-clean.tar.gz").read_bytes() == data


def test_server_ignoring_range_restarts_from_zero(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    server.honour_range = False
    root = tmp_path / "data"
    root.mkdir()
    (root / "dev-clean.tar.gz.part").write_bytes(b"stale bytes that must not stay in front")
    download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert server.ranges == ["bytes=39-"]
    assert (root / "dev-clean.tar.gz").read_bytes() == data


def test_complete_part_file_is_not_refetched(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    (root / "dev-clean.tar.gz.part").write_bytes(data)  # whole, but never renamed (crash)
    download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert server.ranges == [f"bytes={len(data)}-"]  # answered 416, nothing to append
    assert (root / "dev-clean.tar.gz").read_bytes() == data


def test_checksum_mismatch_fails_and_leaves_no_file(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    actual = sums["dev-clean"]
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as err:
        download_subset("dev-clean", root, server.url, {"dev-clean": "0" * 64}, console=QUIET)
    message = str(err.value)
    assert message.startswith("dev-clean.tar.gz: checksum mismatch")
    assert f"expected sha256 {'0' * 64}, got {actual}" in message
    assert sorted(p.name for p in root.iterdir()) == []  # no archive, no .part, nothing extracted


def test_corrupt_partial_download_is_deleted_so_a_rerun_recovers(server, tmp_path: Path):
    data, sums = _serve(server, tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    half = len(data) // 2
    (root / "dev-clean.tar.gz.part").write_bytes(b"X" * half)  # wrong bytes, right length
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert not (root / "dev-clean.tar.gz.part").exists()
    download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert (root / "dev-clean.tar.gz").read_bytes() == data
    assert server.ranges == [f"bytes={half}-", None]


def test_http_error_names_the_url(server, tmp_path: Path):
    with pytest.raises(DownloadError, match=r"/resources/12/dev-other.tar.gz: HTTP 404"):
        download_subset("dev-other", tmp_path, server.url, console=QUIET)
    with pytest.raises(DownloadError, match="unknown subset 'dev-cleen'"):
        download_subset("dev-cleen", tmp_path, server.url, console=QUIET)


def _evil_archive(path: Path, outside: Path, kind: str) -> None:
    """A tarball with a good member, then one that tries to write ``outside``."""
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("LibriSpeech/dev-clean/ok.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        payload = b"evil"
        if kind == "dotdot":
            bad = tarfile.TarInfo("LibriSpeech/../../outside/evil.txt")
        elif kind == "absolute":
            bad = tarfile.TarInfo(str(outside / "evil.txt"))
        elif kind == "symlink":
            bad = tarfile.TarInfo("LibriSpeech/escape")
            bad.type, bad.linkname = tarfile.SYMTYPE, "../../outside"
        elif kind == "absolute-symlink":
            bad = tarfile.TarInfo("LibriSpeech/escape")
            bad.type, bad.linkname = tarfile.SYMTYPE, str(outside)
        elif kind == "hardlink":
            bad = tarfile.TarInfo("LibriSpeech/passwd")
            bad.type, bad.linkname = tarfile.LNKTYPE, "../outside/secret.txt"
        if bad.isfile():
            bad.size = len(payload)
            tar.addfile(bad, io.BytesIO(payload))
        else:
            tar.addfile(bad)
        if bad.issym():  # then write through the link
            through = tarfile.TarInfo("LibriSpeech/escape/evil.txt")
            through.size = len(payload)
            tar.addfile(through, io.BytesIO(payload))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "absolute-symlink", "hardlink"])
def test_malicious_archive_is_rejected_whole(tmp_path: Path, kind: str):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    archive = tmp_path / "evil.tar.gz"
    _evil_archive(archive, outside, kind)
    with pytest.raises(
        DownloadError, match=r"evil.tar.gz: unsafe member '[^']+' \(.+\); nothing was extracted"
    ):
        extract_tar(archive, root, QUIET)
    assert list(root.iterdir()) == []  # not even the good member
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


def test_malicious_download_is_rejected_by_download_subset(server, tmp_path: Path):
    archive = tmp_path / "evil.tar.gz"
    _evil_archive(archive, tmp_path / "outside", "dotdot")
    data = archive.read_bytes()
    server.files["/resources/12/dev-clean.tar.gz"] = data
    root = tmp_path / "root"
    sums = {"dev-clean": hashlib.sha256(data).hexdigest()}
    with pytest.raises(
        DownloadError, match=re.escape("'LibriSpeech/../../outside/evil.txt' ('..' in path)")
    ):
        download_subset("dev-clean", root, server.url, sums, console=QUIET)
    assert not (root / "LibriSpeech").exists()
    assert not (tmp_path / "outside").exists()
