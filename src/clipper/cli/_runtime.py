"""What every command needs first: settings, logging, a database URL, clean fatal errors."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import psycopg
import typer
from psycopg_pool import PoolTimeout
from rich.console import Console
from rich.markup import escape

from ..db.urls import libpq_url
from ..embedded_db import EmbeddedDatabaseUnavailableError, resolve_database_url
from ..logs import configure_logging, redact
from ..queue import QueueAdapter
from ..settings import ConfigError, Settings, load_settings
from ..worker.service import StartupError

T = TypeVar("T")
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(
        f"[bold red]clipper:[/] {escape(redact(message))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.log_level, settings.log_format)
    return settings


def database_url_or_exit(settings: Settings) -> str:
    configured = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        return libpq_url(resolve_database_url(configured))
    except ValueError as exc:
        fail(f"invalid setting DATABASE_URL: {exc}")
    except EmbeddedDatabaseUnavailableError as exc:
        fail(str(exc))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning an unreachable database into one clear line."""
    try:
        return asyncio.run(coroutine)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        fail(f"cannot reach the database named by DATABASE_URL: {exc}")
    except StartupError as exc:
        fail(str(exc))


@asynccontextmanager
async def queue_adapter(settings: Settings) -> AsyncIterator[QueueAdapter]:
    url = database_url_or_exit(settings)
    # One-shot commands: a person is waiting, so give up on an unreachable database sooner.
    config = dataclasses.replace(settings.queue_config(), startup_timeout_seconds=5.0)
    adapter = QueueAdapter(url, config)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.shutdown()
