"""A download stops promptly when its attempt is cancelled or runs out of time, and leaves no
partial file. The source is a real local server that trickles bytes forever."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from clipper.fetch.download import FetchFailedError, download
from tests.helpers import wait_for

STOPS_WITHIN_SECONDS = 2.0


class TricklingServer:
    """Sends a byte every 20 ms until the client goes away (recorded in `disconnected`)."""

    def __init__(self) -> None:
        self.disconnected = threading.Event()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                try:
                    while not server.closing.wait(0.02):  # the trickle's pace, not a test wait
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:  # the client closed the connection
                    server.disconnected.set()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/video.mp4"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[TricklingServer]:
    running = TricklingServer()
    yield running
    running.closing.set()
    running.http.shutdown()
    running.http.server_close()


def _fetch(server: TricklingServer, target: Path, timeout_seconds: float) -> asyncio.Task[None]:
    return asyncio.create_task(
        download(
            server.url,
            target,
            max_bytes=10**9,
            timeout_seconds=timeout_seconds,
            allowlist=["127.0.0.1"],  # the guard refuses loopback unless it is allowlisted
        )
    )


async def test_a_cancelled_download_stops_at_once_and_leaves_no_partial_file(
    server: TricklingServer, tmp_path: Path
) -> None:
    target = tmp_path / "source"
    task = _fetch(server, target, timeout_seconds=600)
    await wait_for(target.exists, message="the transfer under way")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(STOPS_WITHIN_SECONDS):
            await task
    assert not target.exists()
    await wait_for(
        server.disconnected.is_set,
        timeout=STOPS_WITHIN_SECONDS,
        message="the server to see the connection closed",
    )


async def test_a_download_past_its_time_limit_leaves_no_partial_file(
    server: TricklingServer, tmp_path: Path
) -> None:
    target = tmp_path / "source"
    task = _fetch(server, target, timeout_seconds=1)
    with pytest.raises(FetchFailedError, match="took over 1 s"):
        async with asyncio.timeout(1 + STOPS_WITHIN_SECONDS):
            await task
    assert not target.exists()
