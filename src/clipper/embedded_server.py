"""uvicorn inside a Clipper process: the API's server, and the worker's loopback media relay
(fetch/relay.py). Whoever runs it decides when it stops: it installs no signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the command decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def address(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


async def wait_until_listening(server: EmbeddedServer, serving: asyncio.Task[None]) -> bool:
    """True once `server` listens; False when `serving` ended first (it could not start)."""
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.01)
    return True
