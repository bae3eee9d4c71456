"""The worker: jobs from the queue through their lifecycle, their completion webhooks, the
dead-letter consumer with its alerts, and retention; started and stopped as one."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server

from ..db.session import create_engine, session_factory
from ..queue import Consumer, QueueAdapter
from ..services.processing import JobRunner, Processor
from ..services.reading import SourceReading
from ..services.resumable import partial_uploads
from ..services.retention import cleanup_batch_media, cleanup_expired_jobs, cleanup_old_uploads
from ..services.webhooks import WEBHOOK_DELIVERIES_PER_KEY, WEBHOOK_QUEUE
from ..settings import Settings
from ..signals import StopSignals
from ..signing import key_or_process_key
from ..storage import storage_for
from .alerts import alert_hook
from .processors import default_processors
from .webhooks import WebhookSender

logger = logging.getLogger("clipper.worker")


class StartupError(Exception):
    """The worker cannot start; the message names the setting to change."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int | None = None
    main_consumer: bool = True
    dead_letter_consumer: bool = True
    metrics_port: int | None = None
    # None: the clip processors configured by the settings.
    processors: dict[str, Processor] | None = None


class Worker:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        options: WorkerOptions,
        queue: QueueAdapter | None = None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._own_queue = queue is None
        self.queue = queue or QueueAdapter(database_url, settings.queue_config())
        self._engine = create_engine(
            database_url, timeouts=settings.connection_timeouts(), pooler=settings.pooler
        )
        self._consumers: list[Consumer] = []
        self._maintenance: asyncio.Task[None] | None = None
        self._storage = storage_for(settings)
        self._reading = SourceReading(self._storage, by_range=settings.source_range_reads)

    async def start(self) -> None:
        if self._options.metrics_port:
            _serve_metrics(self._options.metrics_port, self.queue.metrics.registry)
        if self._own_queue:
            await self.queue.start()
        if self._options.main_consumer:
            sessions = session_factory(self._engine)
            runner = JobRunner(
                sessions,
                self._options.processors
                if self._options.processors is not None
                else default_processors(self._settings, sessions, self._storage, self._reading),
                self._settings.keep_finished_for,
                self.queue.metrics.registry,
                storage=self._storage,
                deadline_seconds=self._settings.connection_timeouts().statement_seconds,
                queue=self.queue,
            )
            self._consumers.append(
                self.queue.consume(
                    runner,
                    concurrency=self._options.concurrency,
                    on_retry=runner.on_retry,
                    on_dead_letter=runner.on_dead_letter,
                    transaction=self._engine.begin,
                )
            )
            self._consumers.append(self._consume_webhooks())
            self.queue.start_maintenance(self._settings.maintenance_interval_sec)
            self._maintenance = asyncio.create_task(self._clean_up_jobs())
        if self._options.dead_letter_consumer:
            webhook = self._settings.alert_webhook_url
            self._consumers.append(
                self.queue.start_dlq_consumer(
                    alert_hook(webhook.get_secret_value() if webhook else None)
                )
            )
        for consumer in self._consumers:
            logger.info("consuming %r (Ctrl-C to stop)", consumer.queue)

    def _consume_webhooks(self) -> Consumer:
        """Deliver the webhooks the runner publishes; their dead letters stay in webhooks.dlq
        (inspect and redrive them with the queue's calls)."""
        sender = WebhookSender(
            session_factory(self._engine),
            key_or_process_key(self._settings.signing_key, "webhooks"),
            self._settings.allowed_hosts,
            deadline_seconds=self._settings.connection_timeouts().statement_seconds,
        )
        return self.queue.consume(
            sender, queue=WEBHOOK_QUEUE, group_concurrency=WEBHOOK_DELIVERIES_PER_KEY
        )

    async def stop(self, signals: StopSignals) -> None:
        """Graceful: no new claims, running jobs get the grace period; a second signal cuts it."""
        logger.info(
            "stopping: no new claims; waiting up to %.0fs for %d running job(s)",
            self.queue.config.shutdown_grace_seconds,
            sum(consumer.running for consumer in self._consumers),
        )
        shutdown = asyncio.create_task(self._stop_consumers())
        hard = asyncio.create_task(signals.hard_stop.wait())
        await asyncio.wait({shutdown, hard}, return_when=asyncio.FIRST_COMPLETED)
        if not shutdown.done():
            logger.warning("second signal: cancelling running jobs now")
            await asyncio.gather(*(consumer.stop(grace_seconds=0) for consumer in self._consumers))
        await shutdown
        hard.cancel()
        await self._reading.aclose()
        await self._engine.dispose()
        logger.info("worker stopped")

    async def _clean_up_jobs(self) -> None:
        """Job retention on the maintenance schedule (the queue's own runs beside it)."""
        sessions = session_factory(self._engine)
        while True:
            try:
                result = await cleanup_expired_jobs(sessions, self._storage)
                uploads = await cleanup_old_uploads(
                    sessions, self._storage, self._settings.retention_hours
                )
                batches = await cleanup_batch_media(sessions, self._storage)
                partials = await partial_uploads(self._settings.data_dir).sweep()
                if result.deleted or result.kept or uploads or batches or partials:
                    logger.info(
                        "retention: %d expired job(s) deleted, %d kept for next run, "
                        "%d old upload(s) deleted, %d finished batch(es)' media deleted, "
                        "%d expired resumable upload(s) deleted",
                        result.deleted,
                        result.kept,
                        uploads,
                        batches,
                        partials,
                    )
            except Exception as exc:
                logger.error("job retention failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self._settings.maintenance_interval_sec)

    async def _stop_consumers(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        if self._own_queue:
            await self.queue.shutdown()
        else:
            await asyncio.gather(*(consumer.stop() for consumer in self._consumers))


async def run_worker(settings: Settings, database_url: str, options: WorkerOptions) -> None:
    signals = StopSignals().install()
    worker = Worker(settings, database_url, options)
    await worker.start()
    await signals.stop.wait()
    await worker.stop(signals)


def _serve_metrics(port: int, registry: CollectorRegistry) -> None:
    try:
        start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise StartupError(
            f"cannot serve metrics on 127.0.0.1:{port} ({exc.strerror}): set METRICS_PORT "
            "(or --metrics-port) to a free port, or 0 to turn the endpoint off"
        ) from None
    logger.info("metrics on http://127.0.0.1:%d/metrics", port)
