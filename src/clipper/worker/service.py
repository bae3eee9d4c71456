"""Run the worker until SIGINT/SIGTERM, then stop gracefully (a second signal stops at once)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server

from ..queue import AlertHook, Consumer, Handler, create_queue_adapter
from ..settings import Settings
from .handlers import log_alert, log_message

logger = logging.getLogger("clipper.worker")


class StartupError(Exception):
    """The worker cannot start; the message names the setting to change."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int | None = None
    main_consumer: bool = True
    dead_letter_consumer: bool = True
    metrics_port: int | None = None
    handler: Handler = log_message
    alert: AlertHook = log_alert


async def run_worker(settings: Settings, database_url: str, options: WorkerOptions) -> None:
    config = settings.queue_config()
    adapter = create_queue_adapter(settings.provider, config, database_url=database_url)
    stop = asyncio.Event()
    hard_stop = asyncio.Event()
    _install_signal_handlers(stop, hard_stop)
    if options.metrics_port:
        _serve_metrics(options.metrics_port, adapter.metrics.registry)
    await adapter.start()
    consumers: list[Consumer] = []
    if options.main_consumer:
        consumers.append(adapter.consume(options.handler, concurrency=options.concurrency))
        adapter.start_maintenance(settings.maintenance_interval_sec)
    if options.dead_letter_consumer:
        consumers.append(adapter.start_dlq_consumer(options.alert))
    for consumer in consumers:
        logger.info("consuming %r (Ctrl-C to stop)", consumer.queue)
    await stop.wait()
    logger.info(
        "stopping: no new claims; waiting up to %.0fs for %d running job(s)",
        config.shutdown_grace_seconds,
        sum(consumer.running for consumer in consumers),
    )
    shutdown = asyncio.create_task(adapter.shutdown())
    hard = asyncio.create_task(hard_stop.wait())
    await asyncio.wait({shutdown, hard}, return_when=asyncio.FIRST_COMPLETED)
    if not shutdown.done():
        logger.warning("second signal: cancelling running jobs now")
        await adapter.shutdown(grace_seconds=0)
    await shutdown
    hard.cancel()
    logger.info("worker stopped")


def _serve_metrics(port: int, registry: CollectorRegistry) -> None:
    try:
        start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise StartupError(
            f"cannot serve metrics on 127.0.0.1:{port} ({exc.strerror}): set METRICS_PORT "
            "(or --metrics-port) to a free port, or 0 to turn the endpoint off"
        ) from None
    logger.info("metrics on http://127.0.0.1:%d/metrics", port)


def _install_signal_handlers(stop: asyncio.Event, hard_stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (hard_stop if stop.is_set() else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
