"""`asr lm download` against a local 127.0.0.1 server: resume, checksum, trust on first use."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from rich.console import Console

from asr.data.download import DownloadError
from asr.lm.download import LM_CORPUS, download_lm_corpus
from tests.support.http_server import local_server

QUIET = Console(quiet=True)


@pytest.fixture
def server(monkeypatch):
    with local_server(monkeypatch, resource=11) as httpd:
        yield httpd


def _corpus() -> bytes:
    return gzip.compress(("\n".join(f"SENTENCE NUMBER {i}" for i in range(20000)) + "\n").encode())


def test_an_interrupted_download_resumes_and_is_verified(server, tmp_path):
    data = _corpus()
    server.files[f"/resources/11/{LM_CORPUS}"] = data
    server.drop_after = len(data) // 3
    digest = hashlib.sha256(data).hexdigest()
    path = download_lm_corpus(tmp_path, server.url, digest, console=QUIET)
    assert path.read_bytes() == data
    assert server.ranges[0] is None and server.ranges[1] == f"bytes={len(data) // 3}-"
    assert (tmp_path / f"{LM_CORPUS}.sha256").read_text().strip() == digest
    download_lm_corpus(tmp_path, server.url, console=QUIET)  # verified against the record
    assert len(server.ranges) == 2  # nothing fetched again


def test_a_wrong_checksum_deletes_the_download(server, tmp_path):
    server.files[f"/resources/11/{LM_CORPUS}"] = _corpus()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_lm_corpus(tmp_path, server.url, "0" * 64, console=QUIET)
    assert not any(tmp_path.glob(f"{LM_CORPUS}*"))


def test_without_a_published_checksum_the_first_download_s_is_recorded_and_enforced(server, tmp_path):
    data = _corpus()
    server.files[f"/resources/11/{LM_CORPUS}"] = data
    path = download_lm_corpus(tmp_path, server.url, console=QUIET)
    assert (tmp_path / f"{LM_CORPUS}.sha256").read_text().strip() == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-10])  # truncated later on disk
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_lm_corpus(tmp_path, server.url, console=QUIET)
