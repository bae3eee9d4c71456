"""The loopback relay FFmpeg reads remote sources from: byte ranges served as HTTP answers, a
URL that works only while its block runs, and a reader's own failure raised in place of
FFmpeg's "could not read"; and URL sources read by range through the guard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from clipper.fetch.download import FetchFailedError, SourceTooLargeError, ranged_source
from clipper.fetch.guard import ForbiddenUrlError
from clipper.fetch.relay import (
    BLOCK_BYTES,
    IDLE_SECONDS,
    CachedReader,
    MediaRelay,
    byte_range,
)
from clipper.media.inputs import URL_READ_TIMEOUT_SECONDS
from tests.local_server import FileServer, serving

BODY = bytes(range(256)) * 40  # 10,240 bytes, each position telling its own offset


class MemoryReader:
    """A RangeReader over bytes in memory, noting what was asked of it."""

    def __init__(self, body: bytes, *, fail_after: int | None = None) -> None:
        self.body = body
        self.fail_after = fail_after
        self.asked: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.body)

    async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
        self.asked.append((start, stop))
        for offset in range(start, stop, 1000):
            if self.fail_after is not None and offset - start >= self.fail_after:
                raise FetchFailedError("the store went away")
            yield self.body[offset : min(stop, offset + 1000)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (0, 100)),
        ("bytes=0-", (0, 100)),
        ("bytes=10-19", (10, 20)),
        ("bytes=90-", (90, 100)),
        ("bytes=90-500", (90, 100)),  # past the end: up to the end
        ("bytes=-30", (70, 100)),  # the last 30
        ("bytes=-300", (0, 100)),
        ("bytes=0-0", (0, 1)),
        ("bytes=1-2,5-6", (0, 100)),  # several ranges: the whole object instead
        ("items=1-2", (0, 100)),
        ("bytes=100-", None),  # at the end: nothing to send
        ("bytes=20-10", None),
        ("bytes=-0", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


async def _read(reader: CachedReader, start: int, stop: int) -> bytes:
    return b"".join([chunk async for chunk in reader.chunks(start, stop)])


async def test_the_cache_reads_each_block_once_in_runs_and_forgets_the_oldest() -> None:
    body = bytes(index % 251 for index in range(10 * BLOCK_BYTES + 1000))  # a short last block
    inner = MemoryReader(body)
    cached = CachedReader(inner, capacity_bytes=4 * BLOCK_BYTES)
    assert await _read(cached, 10, 20) == body[10:20]
    assert await _read(cached, 100, BLOCK_BYTES + 5) == body[100 : BLOCK_BYTES + 5]
    assert inner.asked == [(0, BLOCK_BYTES), (BLOCK_BYTES, 2 * BLOCK_BYTES)]  # whole blocks
    inner.asked.clear()
    # Blocks 0-1 cached, 2-3 missing: one request for the run of missing blocks.
    assert await _read(cached, 5, 4 * BLOCK_BYTES - 5) == body[5 : 4 * BLOCK_BYTES - 5]
    assert inner.asked == [(2 * BLOCK_BYTES, 4 * BLOCK_BYTES)]
    inner.asked.clear()
    # The end of the object: its short last block.
    end = len(body)
    assert await _read(cached, end - 1500, end) == body[end - 1500 :]
    assert inner.asked == [(9 * BLOCK_BYTES, end)]
    inner.asked.clear()
    # Four blocks fit: 9 and 10 came in last, so 0 and 1 were forgotten, 2 and 3 kept.
    assert (
        await _read(cached, 2 * BLOCK_BYTES, 4 * BLOCK_BYTES)
        == body[2 * BLOCK_BYTES : 4 * BLOCK_BYTES]
    )
    assert inner.asked == []
    assert await _read(cached, 0, 10) == body[:10]
    assert inner.asked == [(0, BLOCK_BYTES)]


async def test_a_source_shorter_than_it_said_fails_the_read() -> None:
    class Short(MemoryReader):
        @property
        def size(self) -> int:
            return len(self.body) + 2 * BLOCK_BYTES

    cached = CachedReader(Short(BODY))
    with pytest.raises(OSError, match="ended before"):
        await _read(cached, 0, cached.size)


async def test_serves_ranges_while_the_block_runs() -> None:
    relay = MediaRelay()
    reader = MemoryReader(BODY)
    try:
        async with relay.serving(reader) as url, httpx.AsyncClient() as http:
            assert url.startswith("http://127.0.0.1:")
            whole = await http.get(url)
            assert (whole.status_code, whole.content) == (200, BODY)
            assert whole.headers["accept-ranges"] == "bytes"
            part = await http.get(url, headers={"Range": "bytes=5000-7499"})
            assert part.status_code == 206
            assert part.headers["content-range"] == f"bytes 5000-7499/{len(BODY)}"
            assert part.content == BODY[5000:7500]
            head = await http.head(url, headers={"Range": "bytes=10-"})
            assert head.status_code == 206
            assert head.headers["content-length"] == str(len(BODY) - 10)
            refused = await http.get(url, headers={"Range": f"bytes={len(BODY)}-"})
            assert refused.status_code == 416
            assert refused.headers["content-range"] == f"bytes */{len(BODY)}"
            # Read once through the relay's cache; the HEAD and the 416 read nothing.
            assert reader.asked == [(0, len(BODY))]
            assert relay.bytes_served == len(BODY) + 2500
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 404  # gone with its block
            guessed = url.rsplit("/", 1)[0] + "/another-token"
            assert (await http.get(guessed)).status_code == 404
    finally:
        await relay.aclose()


async def _read_as_ffmpeg_does(relay: MediaRelay, reader: MemoryReader) -> None:
    """Read `reader` through the relay, see the answer cut short, and fail as FFmpeg does."""
    async with relay.serving(reader) as url:
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(url)
        raise RuntimeError("FFmpeg: I/O error")


async def test_a_failed_read_is_raised_in_place_of_the_blocks_error() -> None:
    relay = MediaRelay()
    try:
        with pytest.raises(FetchFailedError, match="the store went away"):
            await _read_as_ffmpeg_does(relay, MemoryReader(BODY, fail_after=3000))
    finally:
        await relay.aclose()


async def test_a_failed_read_is_raised_even_when_ffmpeg_went_on() -> None:
    """FFmpeg may end well (exit 0) with part of its input missing: the block then ends
    without an error, and the reader's failure is raised all the same."""
    relay = MediaRelay()

    async def read_and_go_on() -> None:
        async with (
            relay.serving(MemoryReader(BODY, fail_after=3000)) as url,
            httpx.AsyncClient() as http,
        ):
            with contextlib.suppress(httpx.RemoteProtocolError):
                await http.get(url)

    try:
        with pytest.raises(FetchFailedError, match="the store went away"):
            await read_and_go_on()
    finally:
        await relay.aclose()


def test_connections_idle_longer_than_ffmpeg_waits_for_a_read() -> None:
    """FFmpeg keeps its connection between requests while it encodes what it read: the relay
    must not close it sooner than FFmpeg would give up on a read itself."""
    assert IDLE_SECONDS > URL_READ_TIMEOUT_SECONDS


async def test_an_attempt_cancelled_while_the_relay_starts_leaves_nothing_running() -> None:
    relay = MediaRelay()

    async def attempt() -> None:
        async with relay.serving(MemoryReader(BODY)):
            raise AssertionError("cancelled before the relay listened")

    starting = asyncio.create_task(attempt())
    await asyncio.sleep(0)  # the attempt runs until it waits for the server to listen
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await relay.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_closing_does_not_wait_on_a_reader_still_being_read() -> None:
    stalled = asyncio.Event()

    class Stalling(MemoryReader):
        async def chunks(self, start: int, stop: int) -> AsyncIterator[bytes]:
            yield self.body[:1000]
            stalled.set()
            await asyncio.Event().wait()  # a store that never sends the rest
            yield b""

    relay = MediaRelay()
    async with (
        relay.serving(Stalling(BODY)) as url,
        httpx.AsyncClient() as http,
        http.stream("GET", url) as response,
    ):
        reading = asyncio.create_task(response.aread())
        await asyncio.wait_for(stalled.wait(), timeout=10)
        async with asyncio.timeout(15):  # uvicorn alone would wait for the answer's end
            await relay.aclose()
        with contextlib.suppress(httpx.HTTPError):
            await reading


async def test_a_url_source_is_read_by_range_through_the_guard() -> None:
    with serving(FileServer(BODY)) as server:
        async with ranged_source(server.url, max_bytes=2**20, allowlist=["127.0.0.1"]) as reader:
            assert reader is not None
            assert reader.size == len(BODY)
            read = b"".join([chunk async for chunk in reader.chunks(9000, 9100)])
            assert read == BODY[9000:9100]
        # The size question, then the one range: the rest of the file never moved.
        assert server.asked == ["bytes=0-0", "bytes=9000-9099"]
        assert server.bytes_sent == 1 + 100


async def test_a_server_without_ranges_is_downloaded_instead() -> None:
    with serving(FileServer(BODY, ranges=False)) as server:
        async with ranged_source(server.url, max_bytes=2**20, allowlist=["127.0.0.1"]) as reader:
            assert reader is None


async def test_a_server_sending_more_than_the_range_fails_the_read() -> None:
    with serving(FileServer(BODY, overshoot=True)) as server:
        async with ranged_source(server.url, max_bytes=2**20, allowlist=["127.0.0.1"]) as reader:
            assert reader is not None
            with pytest.raises(FetchFailedError, match="more than the range"):
                async for _ in reader.chunks(0, 100):
                    pass


async def test_a_source_over_the_cap_is_refused_by_its_size() -> None:
    with serving(FileServer(BODY)) as server:
        with pytest.raises(SourceTooLargeError):
            async with ranged_source(server.url, max_bytes=1000, allowlist=["127.0.0.1"]):
                pass
        assert server.asked == ["bytes=0-0"]


async def test_every_later_range_passes_the_guard_too() -> None:
    """A server that answers the first requests well, then redirects to a host the guard
    refuses: the read fails with the guard's error, and nothing is fetched from there."""
    metadata = "http://169.254.169.254/latest/meta-data/"
    with serving(FileServer(BODY, redirect_to=metadata, redirect_after=1)) as server:
        async with ranged_source(server.url, max_bytes=2**20, allowlist=["127.0.0.1"]) as reader:
            assert reader is not None
            with pytest.raises(ForbiddenUrlError, match="ALLOWLIST_HOSTS"):
                async for _ in reader.chunks(0, 100):
                    pass
