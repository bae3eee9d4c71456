"""The in-memory adapter: same contract as PostgreSQL, for unit tests of code above the queue."""

from __future__ import annotations

import time
from collections.abc import Callable

from ._adapter import BaseQueueAdapter
from ._config import QueueConfig
from ._consumer import ErrorHook
from ._memory_store import MemoryStore
from ._message import HealthReport
from ._metrics import QueueMetrics


class InMemoryQueueAdapter(BaseQueueAdapter):
    def __init__(
        self,
        config: QueueConfig | None = None,
        *,
        on_error: ErrorHook | None = None,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = config or QueueConfig()
        super().__init__(config, on_error=on_error, metrics=metrics)
        self._store = MemoryStore(config.max_attempts, clock)
        self.metrics.watch_depth(self._store.depth_now)

    @property
    def store(self) -> MemoryStore:
        return self._store

    # Memory holds no connections and needs no wake-up listener.
    def _before_first_consumer(self) -> None:
        return None

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def health(self) -> HealthReport:
        return HealthReport(database=True, listener=True)
