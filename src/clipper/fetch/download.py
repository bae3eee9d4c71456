"""Downloading a URL source through the guard: every hop vetted, the vetted address pinned,
a size cap and a time limit. Its failures carry codes; the services decide, from the code,
which are worth another attempt (clipper.services.failures)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from pathlib import Path

import httpx

from .guard import Destination, Resolver, check_url, system_resolver

MAX_REDIRECTS = 5


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
            for _ in range(MAX_REDIRECTS + 1):
                destination = await asyncio.to_thread(check_url, url, allowlist, resolve)
                request = pinned_request(client, destination)
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect:
                        url = str(destination.url.join(response.headers["location"]))
                        continue
                    if response.status_code >= 400:
                        error = (
                            FetchRefusedError if response.status_code < 500 else FetchFailedError
                        )
                        raise error(f"the source answered HTTP {response.status_code}")
                    await _save(response, target, max_bytes)
                    return
                finally:
                    await response.aclose()
    except TimeoutError:
        raise FetchFailedError(f"fetching the source took over {timeout_seconds:g} s") from None
    except httpx.TransportError as exc:
        raise FetchFailedError(f"fetching the source failed: {exc}") from None
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
