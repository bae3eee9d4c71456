"""FFmpeg reads a remote source by byte range through a relay on 127.0.0.1, in the process
that runs FFmpeg: a 30 s clip near the end of a two-hour source moves the index and those
30 s, not the whole file.

Why a relay rather than handing FFmpeg the remote URL (say an S3 presigned GET):
- a URL from a user must pass the SSRF guard at every hop, redirects included, and be pinned
  to the address the guard vetted; FFmpeg's own HTTP client resolves and redirects by itself;
- a presigned URL is a credential for its lifetime, and FFmpeg's arguments are readable by
  every local user (/proc/*/cmdline) and end up in error messages; the relay's URLs name a
  random token, valid only while the attempt that registered it runs;
- one mechanism for every store and every URL: the store's own client (boto3, with its
  retries and TLS) or the guarded downloader make the requests.

It serves GET and HEAD of one byte range (`Range: bytes=a-b`, `a-` or `-n`; anything else
gets the whole object, as RFC 9110 allows), which is what FFmpeg's http protocol asks when it
opens and seeks. Started on first use, stopped by `aclose`."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..embedded_server import EmbeddedServer, wait_until_listening
from ..ranges import RangeReader

logger = logging.getLogger("clipper.fetch")

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# What the relay reads from a store at a time, and keeps per source while its attempt runs
# (so at most QUEUE_CONCURRENCY times this per worker).
BLOCK_BYTES = 256 * 2**10
CACHE_BYTES = 16 * 2**20
# How long a connection may idle between FFmpeg's requests: well past its read timeout.
IDLE_SECONDS = 300


class MediaRelay:
    def __init__(self) -> None:
        self._readers: dict[str, _Registered] = {}
        self._server: EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        # Bytes of object content sent to FFmpeg (what a benchmark or a test compares).
        self.bytes_served = 0

    @contextlib.asynccontextmanager
    async def serving(self, reader: RangeReader) -> AsyncIterator[str]:
        """An http:// URL on 127.0.0.1 that serves `reader` by range while the block runs.
        When a read of `reader` failed, its failure is raised as the block ends, from the
        block's own if it failed: FFmpeg says only that it could not read (and may even exit
        0 with part of its input), the reader says why (a redirect the guard refused, the
        store unavailable, ...)."""
        address = await self._address()
        token = secrets.token_urlsafe(24)
        registered = self._readers[token] = _Registered(CachedReader(reader))
        try:
            yield f"{address}/media/{token}"
        except Exception as exc:
            if registered.failure is not None:
                raise registered.failure from exc
            raise
        finally:
            del self._readers[token]
        if registered.failure is not None:
            raise registered.failure

    async def _address(self) -> str:
        """The server's, started on first use (or again, should it have ended). Recorded as
        soon as it is made, so that `aclose` stops it even if the attempt starting it is
        cancelled before it listens; the next caller waits for it then."""
        async with self._starting:
            if self._server is None or self._serving is None or self._serving.done():
                config = uvicorn.Config(
                    Starlette(routes=[Route("/media/{token}", self._serve, methods=["GET"])]),
                    host="127.0.0.1",
                    port=0,
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    lifespan="off",
                    # FFmpeg keeps its connection between requests while it encodes what it
                    # read, however long that takes: closed idle, its next read would fail.
                    timeout_keep_alive=IDLE_SECONDS,
                    # Stopping does not wait on an FFmpeg still reading (its attempt is over).
                    timeout_graceful_shutdown=2,
                )
                self._server = EmbeddedServer(config)
                self._serving = asyncio.create_task(self._server.serve())
            server, serving = self._server, self._serving
            if not await wait_until_listening(server, serving):
                self._server = self._serving = None
                await serving
                raise OSError("the media relay could not listen on 127.0.0.1")
            return server.address

    async def aclose(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
            self._server = self._serving = None

    async def _serve(self, request: Request) -> Response:
        registered = self._readers.get(request.path_params["token"])
        if registered is None:
            return Response(status_code=404)
        size = registered.reader.size
        wanted = byte_range(request.headers.get("range"), size)
        if wanted is None:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        start, stop = wanted
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(stop - start)}
        partial = stop - start < size
        if partial:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        status = 206 if partial else 200
        if request.method == "HEAD" or start == stop:
            return Response(status_code=status, headers=headers)
        return StreamingResponse(self._send(registered, start, stop), status, headers)

    async def _send(self, registered: _Registered, start: int, stop: int) -> AsyncIterator[bytes]:
        """The range's bytes. FFmpeg hangs up when it seeks elsewhere: the generator is closed
        then, and the reader's request with it."""
        try:
            async for chunk in registered.reader.chunks(start, stop):
                self.bytes_served += len(chunk)
                yield chunk
        except Exception as exc:
            # FFmpeg sees a short read and fails; `serving` raises this in its place.
            registered.failure = registered.failure or exc
            logger.warning("media relay read failed: %s", type(exc).__name__)
            raise


class CachedReader:
    """`reader` through a cache of the blocks read last: FFmpeg and the probe open a source
    several times while one attempt runs (the probe, finding the start's keyframe, the cut),
    and every open reads the same header, index and first packets again. Blocks that are not
    cached are read in one request per run of them, aligned to BLOCK_BYTES."""

    def __init__(self, reader: RangeReader, capacity_bytes: int = CACHE_BYTES) -> None:
        self._reader = reader
        self._blocks: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._capacity = max(1, capacity_bytes // BLOCK_BYTES)

    @property
    def size(self) -> int:
        return self._reader.size

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        def within(block: int, piece: bytes) -> bytes:
            offset = block * BLOCK_BYTES
            return piece[max(0, start - offset) : max(0, stop - offset)]

        block, last = start // BLOCK_BYTES, (stop - 1) // BLOCK_BYTES
        while block <= last:
            if (cached := self._blocks.get(block)) is not None:
                self._blocks.move_to_end(block)
                yield within(block, cached)
                block += 1
                continue
            missing_end = block
            while missing_end <= last and missing_end not in self._blocks:
                missing_end += 1
            async for piece in self._fetch(block, missing_end):
                yield within(block, piece)
                block += 1
            if block != missing_end:
                raise OSError("the source ended before its stated size")

    async def _fetch(self, first: int, end: int) -> AsyncIterator[bytes]:
        """Blocks [first, end) from the reader in one request, each cached once whole; a
        reader that sends more than it was asked is a failed read."""
        stop = min(self.size, end * BLOCK_BYTES)
        pending = bytearray()
        block = first
        async for chunk in self._reader.chunks(first * BLOCK_BYTES, stop):
            pending += chunk
            if block * BLOCK_BYTES + len(pending) > stop:
                raise OSError("the source sent more than the range asked")
            while len(pending) >= BLOCK_BYTES or (
                pending and block * BLOCK_BYTES + len(pending) == stop
            ):
                piece = bytes(pending[:BLOCK_BYTES])
                del pending[:BLOCK_BYTES]
                self._keep(block, piece)
                yield piece
                block += 1

    def _keep(self, block: int, piece: bytes) -> None:
        self._blocks[block] = piece
        self._blocks.move_to_end(block)
        while len(self._blocks) > self._capacity:
            self._blocks.popitem(last=False)


@dataclass(slots=True)
class _Registered:
    reader: RangeReader
    failure: Exception | None = None  # the first failed read's


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, stop) that a Range header asks of `size` bytes: the whole object without one
    (or with one this relay does not take, such as several ranges), None when unsatisfiable."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return (0, size)
    first, last = match.group(1), match.group(2)
    if first == "":  # the last `last` bytes
        length = int(last)
        return None if length == 0 else (max(0, size - length), size)
    start = int(first)
    if start >= size:
        return None
    stop = size if last == "" else min(size, int(last) + 1)
    return None if stop <= start else (start, stop)
