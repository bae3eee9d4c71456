"""Reading a URL source through the guard, every hop vetted and the vetted address pinned:
downloaded whole (a size cap and a time limit), or read by range when the server allows.
Its failures carry codes; the services decide, from the code, which are worth another attempt
(clipper.services.failures)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Collection, Mapping
from pathlib import Path

import httpx

from ..ranges import RangeReader
from .guard import Destination, Resolver, check_url, system_resolver

MAX_REDIRECTS = 5
# A ranged read asks at most this much per request: FFmpeg hangs up when it seeks, and what
# one open request already sent past that point is read for nothing.
READ_WINDOW = 4 * 2**20
_CONTENT_RANGE = re.compile(r"bytes 0-0/(\d+)")


class SourceTooLargeError(Exception):
    """The source is over the size cap (MAX_INPUT_MB)."""

    code = "SOURCE_TOO_LARGE"


class FetchFailedError(Exception):
    """The server failed (HTTP 5xx), or the transfer broke or took too long."""

    code = "FETCH_FAILED"


class FetchRefusedError(Exception):
    """The server will not hand the source over: it answered HTTP 4xx, or kept redirecting."""

    code = "FETCH_REFUSED"


async def download(
    url: str,
    target: Path,
    *,
    max_bytes: int,
    timeout_seconds: float,
    allowlist: Collection[str] = (),
    resolve: Resolver = system_resolver,
) -> None:
    """Save `url` to `target`, following redirects by hand so each hop passes the guard."""
    try:
        async with asyncio.timeout(timeout_seconds), httpx.AsyncClient(timeout=30) as client:
            response, _ = await _follow(client, url, allowlist, resolve)
            try:
                await _save(response, target, max_bytes)
            finally:
                await response.aclose()
    except TimeoutError:
        raise FetchFailedError(f"fetching the source took over {timeout_seconds:g} s") from None
    except httpx.TransportError as exc:
        raise FetchFailedError(f"fetching the source failed: {exc}") from None


@contextlib.asynccontextmanager
async def ranged_source(
    url: str,
    *,
    max_bytes: int,
    allowlist: Collection[str] = (),
    resolve: Resolver = system_resolver,
) -> AsyncIterator[RangeReader | None]:
    """`url` read by range, when its server takes ranges (it answers `Range: bytes=0-0` with
    206 and the size); else None: download it whole. Every request, the first and each range
    FFmpeg asks later, follows redirects through the guard like `download`."""
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            response, final_url = await _follow(
                client, url, allowlist, resolve, headers={"Range": "bytes=0-0"}
            )
            await response.aclose()
            size = _total_size(response)
            if size is not None and size > max_bytes:
                raise SourceTooLargeError(f"the source is over {max_bytes} bytes")
            yield None if size is None else _UrlRanges(client, final_url, size, allowlist, resolve)
    except httpx.TransportError as exc:
        raise FetchFailedError(f"fetching the source failed: {exc}") from None


class _UrlRanges:
    """A URL source read by ranged GETs of at most READ_WINDOW bytes each."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        size: int,
        allowlist: Collection[str],
        resolve: Resolver,
    ) -> None:
        self._client = client
        self._url = url
        self._size = size
        self._allowlist = allowlist
        self._resolve = resolve

    @property
    def size(self) -> int:
        return self._size

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        for window in range(start, stop, READ_WINDOW):
            last = min(stop, window + READ_WINDOW) - 1
            wanted = f"bytes {window}-{last}/{self._size}"
            response, _ = await _follow(
                self._client,
                self._url,
                self._allowlist,
                self._resolve,
                # The bytes as stored: a compressed answer's length says nothing of the range.
                headers={"Range": f"bytes={window}-{last}", "Accept-Encoding": "identity"},
            )
            try:
                if response.status_code != 206 or response.headers.get("content-range") != wanted:
                    raise FetchFailedError("the source stopped answering byte ranges")
                expected, received = last - window + 1, 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > expected:
                        raise FetchFailedError("the source sent more than the range asked")
                    yield chunk
                if received != expected:
                    raise FetchFailedError("the source sent less than the range asked")
            finally:
                await response.aclose()


def _total_size(response: httpx.Response) -> int | None:
    """The size a 206 answer's Content-Range gives (`bytes 0-0/12345`); None for any other
    answer (200: the server ignores ranges) or an unknown size (`/*`)."""
    if response.status_code != 206:
        return None
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    return None if match is None else int(match.group(1))


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    allowlist: Collection[str],
    resolve: Resolver,
    *,
    headers: Mapping[str, str] | None = None,
) -> tuple[httpx.Response, str]:
    """The streamed response at the end of `url`'s redirects, and the URL that gave it: each
    hop vetted by the guard and pinned to the vetted address. An HTTP error is FetchRefused
    (4xx) or FetchFailed (5xx); the caller closes the response."""
    for _ in range(MAX_REDIRECTS + 1):
        destination = await asyncio.to_thread(check_url, url, allowlist, resolve)
        request = pinned_request(client, destination, headers=headers)
        response = await client.send(request, stream=True)
        if response.is_redirect:
            await response.aclose()
            url = str(destination.url.join(response.headers["location"]))
            continue
        if response.status_code >= 400:
            await response.aclose()
            error = FetchRefusedError if response.status_code < 500 else FetchFailedError
            raise error(f"the source answered HTTP {response.status_code}")
        return response, url
    raise FetchRefusedError(f"more than {MAX_REDIRECTS} redirects")


def pinned_request(
    client: httpx.Client | httpx.AsyncClient,  # the sync one: yt-dlp's requests (extract.py)
    destination: Destination,
    method: str = "GET",
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Request:
    """Connect to the vetted address while speaking to the named host (Host header, TLS SNI
    and certificate check), so a second DNS answer can never be used."""
    url, address = destination.url, destination.address
    literal = f"[{address}]" if address.version == 6 else str(address)
    request = client.build_request(
        method,
        url.copy_with(host=literal),
        headers={**(headers or {}), "Host": url.netloc.decode()},
        content=content,
    )
    request.extensions["sni_hostname"] = url.host
    return request


async def _save(response: httpx.Response, target: Path, max_bytes: int) -> None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise SourceTooLargeError(f"the source is over {max_bytes} bytes")
    written = 0
    try:
        with target.open("wb") as file:
            async for chunk in response.aiter_bytes():
                written += len(chunk)
                if written > max_bytes:
                    raise SourceTooLargeError(f"the source is over {max_bytes} bytes")
                await asyncio.to_thread(file.write, chunk)
    except BaseException:
        # Cut off (too large, a broken transfer, the time limit, or the attempt cancelled):
        # no partial file is left to pass for the source. Shielded, so a second cancellation
        # cannot stop the removal.
        await asyncio.shield(asyncio.to_thread(target.unlink, missing_ok=True))
        raise
