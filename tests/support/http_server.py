"""A local 127.0.0.1 HTTP server for the download tests (LibriSpeech subsets, the LM corpus).

``local_server(monkeypatch, resource)`` serves ``server.files`` (path -> bytes) at
``server.url`` = http://127.0.0.1:PORT/resources/RESOURCE, honours ``Range: bytes=N-`` (unless
``server.honour_range`` is False), records each request's Range header in ``server.ranges``, and
with ``server.drop_after`` set cuts the next response off after that many bytes. A misbehaving
mirror: ``server.send_length = False`` leaves out Content-Length (the body ends when the
connection closes), and ``server.junk_after = N`` sends N more bytes past the end of the file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RangeHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.server.ranges.append(requested)
        start = 0
        if requested and self.server.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if self.server.send_length:
            self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.server.drop_after:  # announce the whole file, send part of it, hang up
            self.wfile.write(data[start : start + self.server.drop_after])
            self.server.drop_after = 0
            return
        try:
            self.wfile.write(data[start:])
            self._send_junk(self.server.junk_after)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (a download refusing a too-long answer)

    def _send_junk(self, count: int) -> None:
        block = b"\x5a" * 65536
        for begin in range(0, count, len(block)):
            self.wfile.write(block[: count - begin])

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@contextmanager
def local_server(monkeypatch, resource: int) -> Iterator[ThreadingHTTPServer]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 must not go through a proxy
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files, httpd.ranges, httpd.honour_range, httpd.drop_after = {}, [], True, 0
    httpd.send_length, httpd.junk_after = True, 0
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/resources/{resource}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
