"""The SSRF guard refuses every forbidden class of destination before any connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from clipper.fetch.download import (
    FetchFailedError,
    FetchRefusedError,
    SourceTooLargeError,
    download,
)
from clipper.fetch.guard import ForbiddenUrlError, check_url


def resolving_to(*addresses: str) -> Any:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # ULA (an AWS IPv6 metadata address)
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.100.100.200", "carrier-grade NAT"),  # Alibaba's metadata
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (the address under test)
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:169.254.169.254", "link-local"),
        ("240.0.0.1", "private|reserved"),  # Python counts 240/4 as private too
        # Python counts the ones below as global.
        ("2002:7f00:1::", "6to4"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "6to4"),  # 6to4 of the cloud metadata address
        ("2002:5db8:d822::1", "6to4"),  # 6to4 of a public address: the whole range is refused
        ("192.88.99.1", "6to4 relay"),
        ("::ffff:192.88.99.1", "6to4 relay"),
        ("192.0.0.9", "IETF protocol assignments"),
        ("192.0.0.10", "IETF protocol assignments"),
        ("fec0::1", "site-local"),
        ("feff:ffff::1", "site-local"),
    ],
)
def test_each_forbidden_class_is_refused(address: str, reason: str) -> None:
    with pytest.raises(ForbiddenUrlError, match=reason):
        check_url("https://videos.example/clip.mp4", resolve=resolving_to(address))


def test_a_host_with_one_bad_answer_among_good_ones_is_refused() -> None:
    with pytest.raises(ForbiddenUrlError, match="private"):
        check_url("https://videos.example/", resolve=resolving_to("93.184.216.34", "10.0.0.1"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://videos.example/a.mp4", "only http and https"),
        ("gopher://videos.example/", "only http and https"),
        ("https://user:pw@videos.example/a.mp4", "credentials"),
    ],
)
def test_schemes_and_credentials_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ForbiddenUrlError, match=reason):
        check_url(url, resolve=resolving_to("93.184.216.34"))


def test_a_public_address_passes_and_is_pinned() -> None:
    destination = check_url("https://videos.example/a.mp4", resolve=resolving_to("93.184.216.34"))
    assert str(destination.address) == "93.184.216.34"


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "192.0.1.1", "192.88.100.1", "2606:4700::1111", "2001:4860:4860::8888"],
)
def test_public_neighbours_of_the_refused_ranges_pass(address: str) -> None:
    destination = check_url("https://videos.example/a.mp4", resolve=resolving_to(address))
    assert str(destination.address) == address


def test_the_allowlist_admits_only_its_hosts() -> None:
    with pytest.raises(ForbiddenUrlError, match="ALLOWLIST_HOSTS"):
        check_url("https://other.example/", ["videos.example"], resolve=resolving_to("1.1.1.1"))
    trusted = check_url(
        "http://media.internal/a.mp4", ["media.internal"], resolve=resolving_to("10.0.0.5")
    )
    assert str(trusted.address) == "10.0.0.5"


class Server:
    """A local HTTP server: /video.mp4 (a file), /jump (redirects elsewhere), /loop (redirects
    to itself), /missing (404) and /down (503)."""

    def __init__(self, body: bytes) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path in ("/jump", "/loop"):
                    self.send_response(302)
                    target = "http://10.0.0.1/video.mp4" if self.path == "/jump" else "/loop"
                    self.send_header("Location", target)
                    self.end_headers()
                    return
                if self.path in ("/missing", "/down"):
                    self.send_response(404 if self.path == "/missing" else 503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(b"\x00video" * 1000)
    yield running
    running.http.shutdown()
    running.http.server_close()


async def test_the_local_server_is_refused_unless_allowlisted(
    server: Server, tmp_path: Path
) -> None:
    with pytest.raises(ForbiddenUrlError, match="loopback"):
        await download(
            f"{server.base}/video.mp4", tmp_path / "a", max_bytes=10**6, timeout_seconds=10
        )
    await download(
        f"{server.base}/video.mp4",
        tmp_path / "a",
        max_bytes=10**6,
        timeout_seconds=10,
        allowlist=["127.0.0.1"],
    )
    assert (tmp_path / "a").read_bytes() == b"\x00video" * 1000


async def test_a_redirect_to_a_forbidden_host_is_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ForbiddenUrlError, match="ALLOWLIST_HOSTS"):
        await download(
            f"{server.base}/jump",
            tmp_path / "a",
            max_bytes=10**6,
            timeout_seconds=10,
            allowlist=["127.0.0.1"],
        )


async def test_the_size_cap_holds(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceTooLargeError):
        await download(
            f"{server.base}/video.mp4",
            tmp_path / "a",
            max_bytes=100,
            timeout_seconds=10,
            allowlist=["127.0.0.1"],
        )


async def test_the_vetted_address_is_the_one_connected_to(server: Server, tmp_path: Path) -> None:
    # "videos.test" resolves (for the guard) to the local server; the download must reach it
    # by that pinned address, never by a second lookup of the name.
    port = server.base.rsplit(":", 1)[1]
    await download(
        f"http://videos.test:{port}/video.mp4",
        tmp_path / "a",
        max_bytes=10**6,
        timeout_seconds=10,
        allowlist=["videos.test"],
        resolve=resolving_to("127.0.0.1"),
    )
    assert (tmp_path / "a").stat().st_size == 6000


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/missing", FetchRefusedError, "HTTP 404"),
        ("/loop", FetchRefusedError, "more than 5 redirects"),
        ("/down", FetchFailedError, "HTTP 503"),
    ],
)
async def test_a_refusal_and_a_server_failure_carry_their_own_codes(
    server: Server, tmp_path: Path, path: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await download(
            f"{server.base}{path}",
            tmp_path / "a",
            max_bytes=10**6,
            timeout_seconds=10,
            allowlist=["127.0.0.1"],
        )
