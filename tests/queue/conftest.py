"""Adapters for the queue's tests, on a real PostgreSQL database of each test's own."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from clipper.queue import QueueAdapter, QueueConfig
from tests.conftest import QUEUE_SCHEMA


def fast_config(**overrides: Any) -> QueueConfig:
    """Short timings so the tests run in milliseconds; no jitter so delays are exact."""
    base = QueueConfig(
        queue="clips",
        schema=QUEUE_SCHEMA,
        visibility_seconds=5.0,
        backoff_base_ms=50,
        backoff_max_ms=400,
        backoff_jitter=0.0,
        poll_interval_seconds=0.5,
        shutdown_grace_seconds=2.0,
        reconnect_max_seconds=0.2,
        startup_timeout_seconds=10.0,
    )
    return dataclasses.replace(base, **overrides)


class Harness:
    """Makes adapters on one database and reaches under them to drive time and inspect rows."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.adapters: list[QueueAdapter] = []

    async def adapter(self, **overrides: Any) -> QueueAdapter:
        adapter = QueueAdapter(self.db_url, fast_config(**overrides))
        await adapter.start()
        self.adapters.append(adapter)
        return adapter

    async def _sql(self, query: str, params: dict[str, Any] | None = None) -> list[Any]:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            cursor = await conn.execute(query.replace("{schema}", QUEUE_SCHEMA), params)
            return await cursor.fetchall() if cursor.description else []

    async def expire_leases(self) -> None:
        await self._sql(
            "UPDATE {schema}.messages SET lease_until = now() - interval '1 second' "
            "WHERE state = 'active'"
        )

    async def age_finished(self, hours: float) -> None:
        await self._sql(
            "UPDATE {schema}.messages SET finished_at = finished_at - %(h)s * interval '1 hour'"
            " WHERE finished_at IS NOT NULL",
            {"h": hours},
        )

    async def state(self, job_id: uuid.UUID, queue: str = "clips") -> tuple[str, int] | None:
        rows = await self._sql(
            "SELECT state, attempts FROM {schema}.messages WHERE queue = %(q)s AND job_id = %(j)s",
            {"q": queue, "j": job_id},
        )
        return (rows[0][0], rows[0][1]) if rows else None

    async def close(self) -> None:
        for adapter in self.adapters:
            await adapter.shutdown(grace_seconds=0)


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    harness = Harness(db_url)
    yield harness
    await harness.close()
