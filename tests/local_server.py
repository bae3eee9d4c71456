"""A local HTTP server (127.0.0.1) run in a thread for the length of a test."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

Server = TypeVar("Server", bound=ThreadingHTTPServer)


@contextlib.contextmanager
def serving(server: Server) -> Iterator[Server]:
    """Serve until the block ends, then stop and close the server and join its thread."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FileServer(ThreadingHTTPServer):
    """Serves one file at every path, by byte range when `ranges` (as a CDN or object store
    does), and notes each request's Range header and the bytes it sent. With `redirect_to`,
    every request after the first `redirect_after` is redirected there (a server turning bad
    after the first checks passed)."""

    def __init__(
        self,
        body: bytes,
        *,
        ranges: bool = True,
        redirect_to: str | None = None,
        redirect_after: int = 0,
        overshoot: bool = False,
    ) -> None:
        """`overshoot`: answer a range with the rest of the file (a broken server)."""
        self.body = body
        self.ranges = ranges
        self.overshoot = overshoot
        self.asked: list[str | None] = []
        self.bytes_sent = 0
        self.redirect_to = redirect_to
        self.redirect_after = redirect_after
        super().__init__(("127.0.0.1", 0), _FileHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/talk.mp4"


class _FileHandler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        server = self.server
        wanted = self.headers.get("Range")
        server.asked.append(wanted)
        if server.redirect_to is not None and len(server.asked) > server.redirect_after:
            self.send_response(302)
            self.send_header("Location", server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, size = server.body, len(server.body)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "") if server.ranges else None
        if match is None:
            self.send_response(200)
            start, stop = 0, size
        else:
            start = int(match.group(1))
            stop = min(size, int(match.group(2)) + 1) if match.group(2) else size
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
            stop = size if server.overshoot else stop
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the reader hung up: it seeks elsewhere
            self.wfile.write(body[start:stop])
            server.bytes_sent += stop - start

    def log_message(self, format: str, *args: object) -> None:
        return None
