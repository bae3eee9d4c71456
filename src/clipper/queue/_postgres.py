"""The PostgreSQL adapter: a connection pool, a LISTEN connection and the PostgreSQL store."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ._adapter import BaseQueueAdapter
from ._config import QueueConfig
from ._consumer import ErrorHook
from ._listener import Listener
from ._message import HealthReport, QueueDepth
from ._metrics import QueueMetrics
from ._postgres_store import ENGINE_CONNECTION_KWARGS, PostgresStore
from ._sql import load_queries, notify_channel

logger = logging.getLogger("clipper.queue")


class PostgresQueueAdapter(BaseQueueAdapter):
    def __init__(
        self,
        database_url: str,
        config: QueueConfig,
        *,
        on_error: ErrorHook | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(config, on_error=on_error, metrics=metrics)
        self._database_url = database_url
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url,
            min_size=2,
            max_size=config.pool_max_size,
            kwargs={**ENGINE_CONNECTION_KWARGS, "application_name": "clipper-queue"},
            timeout=10.0,
            open=False,
        )
        self._store = PostgresStore(self._pool, database_url, config.schema, config.max_attempts)
        self._listener = Listener(
            database_url,
            notify_channel(config.schema),
            self._store.wakeups,
            check_interval=config.poll_interval_seconds,
            reconnect_max_seconds=config.reconnect_max_seconds,
            on_error=self._report,
        )
        self._depth_reader = _SyncDepthReader(database_url, config.schema)
        self.metrics.watch_depth(self._depth_reader.read)

    @property
    def store(self) -> PostgresStore:
        return self._store

    @property
    def listener(self) -> Listener:
        return self._listener

    def _report(self, exc: BaseException, operation: str) -> None:
        self.metrics.engine_errors.labels("*", operation).inc()
        logger.error("queue engine error during %s: %s: %s", operation, type(exc).__name__, exc)
        if self._on_error is not None:
            self._on_error(exc, operation)

    async def _open(self) -> None:
        """Open the pool, waiting for the database up to startup_timeout_seconds."""
        await self._pool.open(wait=True, timeout=self.config.startup_timeout_seconds)

    def _before_first_consumer(self) -> None:
        # Only consuming processes listen: a publish-only process (the API) would otherwise
        # spend CPU receiving its own wake-ups.
        if not self._listener.started:
            self._listener.start()

    async def _close(self) -> None:
        await self._listener.stop()
        await self._store.close()
        await self._pool.close()
        self._depth_reader.close()

    async def health(self) -> HealthReport:
        detail: dict[str, str] = {}
        database = False
        try:
            async with asyncio.timeout(2.0):
                database = await self._store.ping()
        except Exception as exc:
            detail["database"] = f"{type(exc).__name__}: {exc}"
        listener = self._listener.alive or not self._listener.started
        if not listener:
            detail["listener"] = "not listening (reconnecting)"
        elif not self._listener.started:
            detail["listener"] = "not needed: this process does not consume"
        return HealthReport(database=database, listener=listener, detail=detail)


class _SyncDepthReader:
    """Reads queue depth for a Prometheus scrape, which runs synchronously (often in the
    exporter's own thread), on one small connection of its own, reopened after a failure."""

    def __init__(self, database_url: str, schema: str) -> None:
        self._database_url = database_url
        self._query = load_queries(schema)["depth"]
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[QueueDepth]:
        with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(
                        self._database_url,
                        autocommit=True,
                        connect_timeout=5,
                        application_name="clipper-queue-metrics",
                        options="-c statement_timeout=5000",
                    )
                rows = self._connection.execute(self._query).fetchall()
            except Exception:
                self.close()
                raise
        return [QueueDepth(*row) for row in rows]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
