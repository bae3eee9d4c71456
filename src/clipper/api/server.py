"""Serving the API with uvicorn inside a Clipper command."""

from __future__ import annotations

import ipaddress
import logging

import uvicorn
from fastapi import FastAPI

from ..embedded_server import EmbeddedServer
from ..settings import Settings

logger = logging.getLogger("clipper.api")


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
