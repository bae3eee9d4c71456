"""The workers registry: a consuming process's row in `{schema}.workers`, kept fresh by a
heartbeat, so operators see which processes are online, where, and what each runs.

One row per QueueAdapter that consumes (a process, whatever number of consumers it runs):
registered when its first consumer starts, heartbeated every `heartbeat_seconds` (the
leases' rhythm) with its queues and the jobs it runs, deleted on a graceful stop. A process
killed without stopping keeps its row until the heartbeat goes stale: reads leave it out at
once, and retention deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Sequence

from ._config import QueueConfig
from ._consumer import Consumer
from ._store import PostgresStore

ErrorReport = Callable[[BaseException, str], None]

# A change (an attempt started or ended) is shown at once, but beats come at most this often:
# a busy worker starting dozens of attempts a second writes its row once a second.
MIN_BEAT_GAP_SECONDS = 1.0


class WorkerRegistry:
    def __init__(
        self,
        store: PostgresStore,
        config: QueueConfig,
        consumers: Callable[[], Sequence[Consumer]],
        report: ErrorReport,
    ) -> None:
        self.id = uuid.uuid4()
        self._store = store
        self._config = config
        self._consumers = consumers
        self._report = report
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """A consumer started, or an attempt started or ended: beat soon (within
        MIN_BEAT_GAP_SECONDS, so the row names what runs now), and start the heartbeat on
        the first call."""
        self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._beat_forever(), name="queue-worker-registry")

    async def beat(self) -> None:
        consumers = list(self._consumers())
        await self._store.register_worker(
            self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=self._config.worker_version,
            queues=sorted({consumer.queue for consumer in consumers}),
            concurrency=sum(consumer.concurrency for consumer in consumers),
            running=[job_id for consumer in consumers for job_id in consumer.running_jobs()],
        )

    async def _beat_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            beaten = loop.time()
            try:
                # Within a heartbeat: a connection that hangs costs one beat, not all later.
                async with asyncio.timeout(self._config.heartbeat_seconds):
                    await self.beat()
            except Exception as exc:
                # The next beat tries again; a row missing meanwhile is registered again.
                self._report(exc, "worker heartbeat")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.heartbeat_seconds):
                    await self._changed.wait()
            await asyncio.sleep(max(0.0, beaten + MIN_BEAT_GAP_SECONDS - loop.time()))

    async def stop(self) -> None:
        """Stop beating and deregister (after the consumers stopped). When the database does
        not answer, the row is left to go stale: readers drop it, retention deletes it."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            await self._store.deregister_worker(self.id)
        except Exception as exc:
            self._report(exc, "worker deregister")
