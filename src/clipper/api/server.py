"""Serving the API with uvicorn inside a Clipper command."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from ..settings import Settings

logger = logging.getLogger("clipper.api")


class EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handlers of its own: the command decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def address(self) -> str:
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


def make_server(app: FastAPI, settings: Settings) -> EmbeddedServer:
    if not settings.enable_api_keys and not _is_loopback(settings.api_host):
        logger.warning(
            "API_HOST=%s exposes the API beyond this machine with API keys off; "
            "set ENABLE_API_KEYS=true",
            settings.api_host,
        )
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )
    return EmbeddedServer(config)


async def wait_until_listening(server: EmbeddedServer, serving: asyncio.Task[None]) -> bool:
    while not server.started:
        if serving.done():
            return False
        await asyncio.sleep(0.01)
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
