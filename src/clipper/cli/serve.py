"""`clipper api` and `clipper up`: the HTTP API alone, or everything in one process."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from ._runtime import database_reachable_or_exit, database_url_or_exit, run, settings_or_exit

if TYPE_CHECKING:
    from ..embedded_server import EmbeddedServer
    from ..settings import Settings
    from ..signals import StopSignals

logger = logging.getLogger("clipper")

MigrateOption = Annotated[
    bool | None,
    typer.Option("--migrate/--no-migrate", help="Apply migrations first (default AUTO_MIGRATE)."),
]


def api(migrate_first: MigrateOption = None) -> None:
    """Serve the HTTP API on API_HOST:API_PORT (127.0.0.1:8080 by default). OpenAPI docs are
    at /docs. Jobs it accepts are run by `clipper worker` processes."""
    settings, url = _prepare(migrate_first)
    run(_serve_api(settings, url))


def up(migrate_first: MigrateOption = True) -> None:
    """Run everything in one process: the API, the worker, the dead-letter consumer and
    retention. The quickstart's command; uses an embedded PostgreSQL when DATABASE_URL is
    unset. Ctrl-C stops gracefully; a second Ctrl-C stops at once."""
    settings, url = _prepare(migrate_first)
    run(_serve_all(settings, url))


def _prepare(migrate_first: bool | None) -> tuple[Settings, str]:
    from ..db import migrate

    settings = settings_or_exit()
    url = database_url_or_exit(settings)
    database_reachable_or_exit(url, settings)
    if settings.auto_migrate if migrate_first is None else migrate_first:
        migrate.upgrade(url, settings.queue_schema)
    return settings, url


async def _serve_api(settings: Settings, url: str) -> None:
    from ..api import create_app
    from ..api.server import make_server
    from ..queue import QueueAdapter
    from ..signals import StopSignals

    signals = StopSignals().install()
    # Opened here rather than in the app's lifespan, whose failure uvicorn reports as a
    # traceback: a database lost since the check is then run()'s one line.
    queue = QueueAdapter(url, settings.queue_config())
    await queue.start()
    try:
        server = make_server(create_app(settings, url, queue=queue), settings)
        await _serve_until_stopped(server, signals)
    finally:
        await queue.shutdown()


async def _serve_all(settings: Settings, url: str) -> None:
    from ..api import create_app
    from ..api.server import make_server
    from ..queue import QueueAdapter
    from ..signals import StopSignals
    from ..worker.service import Worker, WorkerOptions

    signals = StopSignals().install()
    queue = QueueAdapter(url, settings.queue_config())
    await queue.start()
    worker = Worker(settings, url, WorkerOptions(metrics_port=0), queue=queue)
    await worker.start()
    server = make_server(create_app(settings, url, queue=queue), settings)
    try:
        await _serve_until_stopped(server, signals)
    finally:
        await worker.stop(signals)
        await queue.shutdown()


async def _serve_until_stopped(server: EmbeddedServer, signals: StopSignals) -> None:
    from ..embedded_server import wait_until_listening
    from ..worker.service import StartupError

    serving = asyncio.create_task(server.serve())
    if not await wait_until_listening(server, serving):
        await serving
        raise StartupError(
            "the API could not start: is API_PORT taken? Set API_PORT (or API_HOST)."
        )
    address = server.address
    logger.info("API on %s (docs at %s/docs)", address, address)
    typer.echo(f"Clipper API on {address}  (docs: {address}/docs)", err=True)
    stopping = asyncio.create_task(signals.stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
