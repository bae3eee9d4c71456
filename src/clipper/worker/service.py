"""Run the worker until SIGINT/SIGTERM, then stop gracefully (a second signal stops at once)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from prometheus_client import start_http_server

from ..queue import AlertHook, Handler, create_queue_adapter
from ..settings import Settings
from .handlers import log_alert, log_message

logger = logging.getLogger("clipper.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int | None = None
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
    await adapter.start()
    if options.metrics_port:
        start_http_server(options.metrics_port, addr="127.0.0.1", registry=adapter.metrics.registry)
        logger.info("metrics on http://127.0.0.1:%d/metrics", options.metrics_port)
    consumer = adapter.consume(options.handler, concurrency=options.concurrency)
    if options.dead_letter_consumer:
        adapter.start_dlq_consumer(options.alert)
    adapter.start_maintenance(settings.maintenance_interval_sec)
    logger.info(
        "worker consuming %r with concurrency %d (Ctrl-C to stop)",
        consumer.queue,
        options.concurrency or config.concurrency,
    )
    await stop.wait()
    logger.info(
        "stopping: no new claims; waiting up to %.0fs for %d running job(s)",
        config.shutdown_grace_seconds,
        consumer.running,
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


def _install_signal_handlers(stop: asyncio.Event, hard_stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (hard_stop if stop.is_set() else stop).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
