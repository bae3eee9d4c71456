"""What every command needs first: settings, logging, a database URL, clean fatal errors.
(Imported lazily, like every command's dependencies: see the package's docstring.)"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ..queue import QueueAdapter
    from ..settings import Settings

T = TypeVar("T")
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    from ..logs import redact

    err_console.print(
        f"[bold red]clipper:[/] {escape(redact(message))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    from ..logs import configure_logging
    from ..settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        fail(str(exc))
    configure_logging(settings.log_level, settings.log_format)
    return settings


def database_url_or_exit(settings: Settings) -> str:
    from ..db.urls import libpq_url
    from ..embedded_db import EmbeddedDatabaseUnavailableError, resolve_database_url

    configured = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        return libpq_url(resolve_database_url(configured))
    except ValueError as exc:
        fail(f"invalid setting DATABASE_URL: {exc}")
    except EmbeddedDatabaseUnavailableError as exc:
        fail(str(exc))


def database_reachable_or_exit(url: str, settings: Settings) -> None:
    """Connect once before a service starts: an unreachable database is then one line naming
    DATABASE_URL, not the traceback of a migration or of the API's start-up, nor the pool's
    half-minute of retries. A supervisor restarts the service; a person reads the line."""
    import psycopg

    try:
        psycopg.connect(url, **settings.connection_timeouts().libpq_kwargs()).close()
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to the database at DATABASE_URL ({_where(url)}): {_reason(exc)}")
    except psycopg.ProgrammingError:
        # libpq quotes the offending part of the URL, which may be the password.
        fail("invalid setting DATABASE_URL: not a valid PostgreSQL connection URL")


def _where(url: str) -> str:
    """host:port of each server the URL names (no user, password or database)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "5432").split(",")
    places = []
    for index, host in enumerate(hosts):
        port = ports[index] if index < len(ports) else ports[-1]
        if not host or host.startswith("/"):
            places.append(f"the local socket, port {port}")
        else:
            places.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return ", ".join(places)


def _reason(exc: psycopg.Error) -> str:
    """libpq's reason in a few words: `connection to server at "…", port … failed: Connection
    refused` (and a hint on the next line) becomes `connection refused`."""
    lines = str(exc).strip().splitlines() or ["no reason given"]
    reason = lines[0].removeprefix("connection is bad: ").rsplit(" failed: ", 1)[-1]
    reason = reason.removeprefix("FATAL:").strip()
    return reason[:1].lower() + reason[1:]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning an unreachable database into one clear line."""
    import psycopg
    from psycopg_pool import PoolTimeout
    from sqlalchemy import exc as sa_exc

    from ..worker.service import StartupError

    try:
        return asyncio.run(coroutine)
    except PoolTimeout as exc:
        fail(f"cannot reach the database named by DATABASE_URL: {exc}")
    except psycopg.OperationalError as exc:
        fail(f"cannot reach the database named by DATABASE_URL: {_reason(exc)}")
    except sa_exc.OperationalError as exc:  # SQLAlchemy's wrapper of psycopg's (the services')
        reason = _reason(exc.orig) if isinstance(exc.orig, psycopg.Error) else "it failed"
        fail(f"cannot reach the database named by DATABASE_URL: {reason}")
    except StartupError as exc:
        fail(str(exc))


def command_engine(settings: Settings, url: str, pool_size: int = 1) -> AsyncEngine:
    """A one-shot command's database engine: the services' deadlines, and the settings a
    transaction pooler in front of the database needs (DATABASE_POOLER)."""
    from ..db.session import create_engine

    return create_engine(
        url, pool_size, timeouts=settings.connection_timeouts(), pooler=settings.pooler
    )


@asynccontextmanager
async def queue_adapter(settings: Settings) -> AsyncIterator[QueueAdapter]:
    from ..queue import QueueAdapter

    url = database_url_or_exit(settings)
    # First one plain connection: an unreachable database is then libpq's reason in one line,
    # not the pool's retries and its time-out.
    await asyncio.to_thread(database_reachable_or_exit, url, settings)
    # One-shot commands: a person is waiting, so give up on an unreachable database sooner.
    config = dataclasses.replace(settings.queue_config(), startup_timeout_seconds=5.0)
    adapter = QueueAdapter(url, config)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.shutdown()
