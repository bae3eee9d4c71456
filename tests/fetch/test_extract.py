"""yt-dlp reaches the network only through the guard, pinned to the vetted address. A real
local server (on 127.0.0.1) serves the pages; made-up host names get their answers from a
fake DNS: socket.getaddrinfo itself, so every lookup in the process sees it, the guard's and
any yt-dlp would make of its own."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clipper.fetch.download import FetchFailedError, FetchRefusedError
from clipper.fetch.extract import media_url
from clipper.fetch.guard import ForbiddenUrlError, check_url
from tests.helpers import wait_for

PUBLIC = "93.184.216.34"  # a public address: the guard lets it pass, nothing connects to it
# Room for the threads yt-dlp runs in to notice a deadline or a cancel on a loaded machine (a
# deadline to wait on, not a sleep: passing runs take a fraction of it).
SLACK_SECONDS = 10.0


class Site:
    """Pages for yt-dlp, recording every request (path and Host header) it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.cookies: dict[str, str] = {}  # path: the Cookie header it came with
        self.closing = threading.Event()
        self.disconnected = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, self.headers.get("Host", "")))
                path = self.path.partition("?")[0]
                site.cookies[path] = self.headers.get("Cookie", "")
                internal = f"http://127.0.0.1:{site.port}"
                if path in ("/jump", "/moved"):
                    self.send_response(302)
                    self.send_header(
                        "Location", f"{internal}/secret" if path == "/jump" else "/page"
                    )
                    self.send_header("Set-Cookie", "visited=yes; Path=/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/broken":
                    self.answer(500, "text/plain", f"backend {internal}/admin is down".encode())
                elif path == "/trickle":
                    self.trickle()
                elif path == "/clip.mp4":
                    self.answer(200, "video/mp4", b"\x00" * 1000)
                else:
                    pages = {
                        "/page": '<video src="/clip.mp4"></video>',
                        "/leak": f'<video src="{internal}/secret.mp4"></video>',
                        "/hls": f'<video><source src="{internal}/secret.m3u8"'
                        ' type="application/x-mpegURL"></video>',
                    }
                    video = pages.get(path)
                    if video is None:
                        self.answer(404, "text/plain", b"")
                    else:
                        html = f"<html><head><title>A talk</title></head><body>{video}</body>"
                        self.answer(200, "text/html", f"{html}</html>".encode())

            def answer(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                try:
                    self.wfile.write(b"<html>")
                    while not site.closing.wait(0.02):  # the trickle's pace, not a test wait
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:  # the client closed the connection
                    site.disconnected.set()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path.partition("?")[0] for path, _ in self.requests]


class FakeDns:
    """socket.getaddrinfo for made-up names (any other resolves as usual). `names` maps each
    to what gives its next answer, which may raise socket.gaierror."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.names: dict[str, Callable[[], str]] = {}
        self._real = real

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        answer = self.names.get(host)
        if answer is None:
            return self._real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer(), int(port or 0)))]


def unresolvable() -> str:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.closing.set()
    running.http.shutdown()
    running.http.server_close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    fake.names["page.test"] = lambda: "127.0.0.1"
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


async def test_requests_go_to_the_vetted_address_and_never_resolve_again(
    site: Site, dns: FakeDns
) -> None:
    # The guard's own resolver names the local server; any other lookup of the name fails.
    # yt-dlp still reaches the page, so it connected to the vetted address itself.
    dns.names["page.test"] = unresolvable
    page = f"http://page.test:{site.port}/page"
    found = await media_url(page, allowlist=["page.test"], resolve=lambda host, port: ["127.0.0.1"])
    assert found == f"http://page.test:{site.port}/clip.mp4"
    assert site.requests == [("/page", f"page.test:{site.port}")]


async def test_a_redirect_the_guard_allows_is_followed_with_its_cookies(
    site: Site, dns: FakeDns
) -> None:
    found = await media_url(f"http://page.test:{site.port}/moved", allowlist=["page.test"])
    assert found == f"http://page.test:{site.port}/clip.mp4"
    assert site.paths()[:2] == ["/moved", "/page"]  # yt-dlp may then ask for /page again
    assert site.cookies["/page"] == "visited=yes"


async def test_a_rebinding_host_never_gets_a_request_through_to_loopback(
    site: Site, dns: FakeDns
) -> None:
    # The first answer is public (the worker's check before extraction passes), every later
    # one is 127.0.0.1: whatever asks again, the guard or yt-dlp, gets the loopback address.
    answers = iter([PUBLIC])
    dns.names["rebind.test"] = lambda: next(answers, "127.0.0.1")
    page = f"http://rebind.test:{site.port}/page"
    check_url(page)
    with pytest.raises(ForbiddenUrlError) as refused:
        await media_url(page)
    assert site.requests == []
    assert "127.0.0.1" not in str(refused.value)


async def test_a_manifest_the_page_names_on_a_private_address_is_never_fetched(
    site: Site, dns: FakeDns
) -> None:
    with pytest.raises(ForbiddenUrlError, match=r"^the page leads to an address Clipper does not"):
        await media_url(f"http://page.test:{site.port}/hls", allowlist=["page.test"])
    assert site.paths() == ["/hls"]  # never /secret.m3u8


async def test_a_media_url_the_page_names_on_a_private_address_is_refused(
    site: Site, dns: FakeDns
) -> None:
    with pytest.raises(ForbiddenUrlError) as refused:
        await media_url(f"http://page.test:{site.port}/leak", allowlist=["page.test"])
    assert "127.0.0.1" not in str(refused.value)
    assert site.paths() == ["/leak"]


async def test_a_redirect_to_a_private_address_is_never_followed(site: Site, dns: FakeDns) -> None:
    with pytest.raises(ForbiddenUrlError):
        await media_url(f"http://page.test:{site.port}/jump", allowlist=["page.test"])
    assert site.paths() == ["/jump"]  # never /secret


async def test_the_job_sees_no_internal_url_or_status_and_the_log_gets_the_rest(
    site: Site, dns: FakeDns, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="clipper.fetch")
    page = f"http://page.test:{site.port}/broken?token=s3cret"
    with pytest.raises(FetchFailedError) as failed:
        await media_url(page, allowlist=["page.test"])
    assert str(failed.value) == "the page could not be read"
    assert failed.value.code == "FETCH_FAILED"
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("HTTP Error 500" in message for message in logged), logged
    assert not any("s3cret" in message for message in logged)

    with pytest.raises(FetchRefusedError, match=r"^the page could not be read$"):
        await media_url(f"http://page.test:{site.port}/missing", allowlist=["page.test"])


async def test_an_extraction_stops_at_its_time_limit(site: Site, dns: FakeDns) -> None:
    started = time.monotonic()
    with pytest.raises(FetchFailedError, match=r"^the page could not be read$"):
        async with asyncio.timeout(1 + SLACK_SECONDS):
            await media_url(
                f"http://page.test:{site.port}/trickle", allowlist=["page.test"], timeout_seconds=1
            )
    assert time.monotonic() - started >= 1
    await wait_for(site.disconnected.is_set, timeout=SLACK_SECONDS, message="the disconnect")


async def test_a_cancelled_extraction_stops_its_requests(site: Site, dns: FakeDns) -> None:
    task = asyncio.create_task(
        media_url(f"http://page.test:{site.port}/trickle", allowlist=["page.test"])
    )
    await wait_for(lambda: site.requests, message="the page requested")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The thread yt-dlp runs in cannot be cancelled; it stops at its next read.
    await wait_for(site.disconnected.is_set, timeout=SLACK_SECONDS, message="the disconnect")
