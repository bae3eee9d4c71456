"""Streamed responses in process: httpx's ASGITransport collects the whole body before it
answers, so an endless Server-Sent Events stream would never come back. This transport
hands the body over chunk by chunk as the app sends it, and tells the app the client went
away when the response is closed; `sse_events` parses what arrives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx


class _StreamedBody(httpx.AsyncByteStream):
    def __init__(
        self, chunks: asyncio.Queue[bytes | None], app: asyncio.Task[None], gone: asyncio.Event
    ) -> None:
        self._chunks = chunks
        self._app = app
        self._gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def aclose(self) -> None:
        self._gone.set()  # http.disconnect: the app's stream ends as for a closed tab
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(self._app)
        except TimeoutError:
            self._app.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._app


class StreamingASGITransport(httpx.ASGITransport):
    """ASGITransport (so tests/api/conftest.py still notes each status) that streams."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        port = request.url.port or {"http": 80, "https": 443}[request.url.scheme]
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": request.url.scheme,
            "path": unquote(request.url.path),
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        sent_body = False
        gone = asyncio.Event()
        started: asyncio.Future[MutableMapping[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    chunks.put_nowait(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                chunks.put_nowait(None)

        app = asyncio.create_task(run())
        start = await started
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_StreamedBody(chunks, app, gone),
        )


@dataclass
class ServerEvent:
    event: str | None = None
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)


async def sse_events(response: httpx.Response) -> AsyncIterator[ServerEvent]:
    """Each event (or comment-only block, such as a keepalive) as it arrives."""
    current = ServerEvent()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or current.event or current.comments:
                current.data = "\n".join(data)
                yield current
            current, data = ServerEvent(), []
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value


async def next_event(events: AsyncIterator[ServerEvent], timeout: float = 10.0) -> ServerEvent:
    """The next block of the stream within `timeout` seconds (else the test fails)."""
    try:
        async with asyncio.timeout(timeout):
            return await anext(events)
    except TimeoutError:
        raise AssertionError(f"no event within {timeout}s") from None
