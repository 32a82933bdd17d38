"""`asr lm download` against a local 127.0.0.1 server: resume, checksum, trust on first use."""

from __future__ import annotations

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rich.console import Console

from asr.data.download import DownloadError
from asr.lm.download import LM_CORPUS, download_lm_corpus

QUIET = Console(quiet=True)


class Handler(BaseHTTPRequestHandler):
    """Serves server.files, honours ``Range: bytes=N-``; with server.drop_after, sends only that
    many bytes of the next response and hangs up (an interrupted transfer)."""

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.server.ranges.append(requested)
        start = int(requested.split("=")[1].rstrip("-")) if requested else 0
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.server.drop_after:
            self.wfile.write(data[start : start + self.server.drop_after])
            self.server.drop_after = 0
            return
        self.wfile.write(data[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.ranges, httpd.drop_after = {}, [], 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/resources/11"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


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
