"""Queue depth for metrics, read on the event loop and kept as a snapshot.

A Prometheus scrape is synchronous (often on the exporter's own thread), so reading the
database from it would block the scrape for as long as the database does not answer: on a
half-open connection, forever. Instead the depth is refreshed in the background, each read
bounded by the statement deadline, and a scrape only looks at the last snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ._message import QueueDepth

logger = logging.getLogger("clipper.queue")


class StaleDepthError(Exception):
    """The last successful read of the queue depth is too old to report."""


class DepthSnapshot:
    def __init__(
        self, read: Callable[[], Awaitable[list[QueueDepth]]], interval_seconds: float
    ) -> None:
        self._read = read
        self._interval = interval_seconds
        self._rows: list[QueueDepth] = []
        self._read_at = 0.0  # time.monotonic() of the last good read; 0: never
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_forever(), name="queue-depth")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def read(self) -> list[QueueDepth]:
        """The last snapshot; StaleDepthError when it is older than three refreshes."""
        if time.monotonic() - self._read_at > 3 * self._interval:
            raise StaleDepthError("the queue depth could not be read recently")
        return self._rows

    async def _refresh_forever(self) -> None:
        while True:
            try:
                self._rows = await self._read()  # the store bounds it with its deadline
                self._read_at = time.monotonic()
            except Exception as exc:
                logger.debug("queue depth not refreshed: %s", type(exc).__name__)
            await asyncio.sleep(self._interval)
