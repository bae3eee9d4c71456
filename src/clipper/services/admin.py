"""The operator's view of the queue for the console: per-queue depth and counts, the last
hour's throughput and pickup latency (from the queue's stats table), the workers online,
and pausing a queue. Reads only: the writes are the queue's (pause) and requeue's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.repositories import JobRepository
from ..domain.jobs import JobStatus
from ..errors import NotFoundError
from ..queue import PriorityDepth, QueueAdapter, QueueStats, WorkerInfo, dead_letter_queue_name
from .webhooks import WEBHOOK_QUEUE

# The charts' window: the stats table keeps a row per queue and minute.
OVERVIEW_MINUTES = 60


def queue_names(queue: QueueAdapter) -> tuple[str, ...]:
    """The queues Clipper runs: its clips (QUEUE_NAME) and the completion webhooks."""
    return (queue.config.queue, WEBHOOK_QUEUE)


@dataclass(frozen=True, slots=True)
class QueueOverview:
    queue: str
    paused: bool
    ready: int
    scheduled: int
    active: int
    failed: int
    dead_lettered: int
    oldest_waiting_seconds: float
    priorities: tuple[PriorityDepth, ...]


@dataclass(frozen=True, slots=True)
class Overview:
    queues: tuple[QueueOverview, ...]
    # Per queue and minute over the last OVERVIEW_MINUTES, oldest first (minutes without
    # any work have no row).
    minutes: tuple[QueueStats, ...]


# The live overview is read at most this often per process, however many streams are open.
OVERVIEW_MIN_GAP_SECONDS = 1.0


class SharedOverview:
    """The overview of one process's live streams, read at most once per `min_gap_seconds`
    whatever the number of streams open (each admin tab would otherwise run the same
    queries on every job change)."""

    def __init__(
        self, queue: QueueAdapter, min_gap_seconds: float = OVERVIEW_MIN_GAP_SECONDS
    ) -> None:
        self._queue = queue
        self._min_gap = min_gap_seconds
        self._lock = asyncio.Lock()
        self._read: tuple[float, Overview] | None = None

    async def get(self, sessions: async_sessionmaker[AsyncSession]) -> Overview:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._read is None or loop.time() - self._read[0] >= self._min_gap:
                async with sessions() as session:
                    self._read = (loop.time(), await overview(session, self._queue))
            return self._read[1]


async def overview(session: AsyncSession, queue: QueueAdapter) -> Overview:
    """Depths from the queue (its unfinished messages), counts from the stats table, and the
    failed and dead-lettered counts from the application's own records: for the clips, the
    failed jobs and their dead-letter records (one query each); for the webhooks (no job
    record each), the undelivered ones waiting in `webhooks.dlq`."""
    names = queue_names(queue)
    depth = {row.queue: row for row in await queue.depth()}
    by_priority = await queue.depth_by_priority()
    paused = set(await queue.paused_queues())
    stats = [row for row in await queue.stats(minutes=OVERVIEW_MINUTES) if row.queue in names]
    jobs = JobRepository(session)
    failed_jobs = await jobs.count_with_status(JobStatus.FAILED)
    dead_jobs = await jobs.dead_letter_count()
    queues = []
    for name in names:
        found = depth.get(name)
        if name == queue.config.queue:
            failed, dead = failed_jobs, dead_jobs
        else:
            letters = depth.get(dead_letter_queue_name(name))
            failed = dead = 0 if letters is None else letters.ready + letters.scheduled
        queues.append(
            QueueOverview(
                queue=name,
                paused=name in paused,
                ready=found.ready if found else 0,
                scheduled=found.scheduled if found else 0,
                active=found.active if found else 0,
                failed=failed,
                dead_lettered=dead,
                oldest_waiting_seconds=found.oldest_ready_age_seconds if found else 0.0,
                priorities=tuple(row for row in by_priority if row.queue == name),
            )
        )
    return Overview(tuple(queues), tuple(sorted(stats, key=lambda row: (row.minute, row.queue))))


async def workers(queue: QueueAdapter) -> list[WorkerInfo]:
    """The worker processes whose heartbeat is fresh (the queue's registry)."""
    return await queue.workers()


async def set_paused(queue: QueueAdapter, name: str, paused: bool) -> None:
    """Pause (no new claims anywhere; running jobs finish) or resume one of Clipper's queues;
    NotFoundError for any other name (a typo must not pause a queue nobody runs)."""
    if name not in queue_names(queue):
        known = ", ".join(queue_names(queue))
        raise NotFoundError(f"no queue named {name!r}: the queues are {known}")
    if paused:
        await queue.pause(name)
    else:
        await queue.resume(name)
