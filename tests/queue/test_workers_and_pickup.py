"""The workers registry (who consumes, what each runs, stale ones dropped and swept) and the
pickup latency and per-priority depth the console's overview reads: on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

from clipper.queue import JobContext, PriorityDepth, QueueMessage, QueueStats, ReceivedMessage
from tests.helpers import wait_for
from tests.queue.conftest import Harness


async def test_a_consumer_registers_with_its_running_job_and_deregisters_on_stop(
    harness: Harness,
) -> None:
    adapter = await harness.adapter(worker_version="9.8.7")
    reader = await harness.adapter()  # another process reading the registry
    assert await reader.workers() == []
    started, release = asyncio.Event(), asyncio.Event()

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await release.wait()

    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    adapter.consume(handle, concurrency=3)
    adapter.consume(handle, queue="webhooks", concurrency=2)

    async def listed_running() -> bool:
        workers = await reader.workers()
        return len(workers) == 1 and workers[0].running == (job,)

    # The job shows on the heartbeat after it started (every visibility / 3 s).
    await wait_for(listed_running, timeout=10, message="the worker with its job")
    [worker] = await reader.workers()
    assert worker.id == adapter.registry.id
    assert (worker.host, worker.pid, worker.version) == (socket.gethostname(), os.getpid(), "9.8.7")
    assert worker.queues == ("clips", "webhooks")
    assert worker.concurrency == 5
    assert worker.heartbeat_at >= worker.started_at
    release.set()
    await adapter.shutdown()
    assert await reader.workers() == []
    assert await harness._sql("SELECT count(*) FROM {schema}.workers") == [(0,)]


async def test_the_row_shows_what_runs_now_long_before_the_next_heartbeat(
    harness: Harness,
) -> None:
    """An attempt's start and end are written within a second (MIN_BEAT_GAP_SECONDS), not at
    the next heartbeat: with a 60 s visibility that is 20 s away."""
    adapter = await harness.adapter(visibility_seconds=60.0)
    reader = await harness.adapter()
    release = asyncio.Event()

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        await release.wait()

    job = uuid.uuid4()
    adapter.consume(handle)

    async def running(expected: tuple[uuid.UUID, ...]) -> bool:
        workers = await reader.workers()
        return len(workers) == 1 and workers[0].running == expected

    await wait_for(lambda: running(()), timeout=5, message="the idle worker")
    await adapter.publish(QueueMessage(job))
    await wait_for(lambda: running((job,)), timeout=5, message="the job shown running")
    release.set()
    await wait_for(lambda: running(()), timeout=5, message="the job gone from the row")


async def test_a_stale_worker_is_not_listed_and_retention_sweeps_it(harness: Harness) -> None:
    adapter = await harness.adapter()

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        return None

    adapter.consume(handle)
    fresh = await harness.adapter()
    await wait_for(lambda: _count_workers(harness, 1), message="the registration")
    # A process killed without deregistering: its last heartbeat three beats ago and more.
    gone = uuid.uuid4()
    await harness._sql(
        "INSERT INTO {schema}.workers (id, host, pid, version, queues, concurrency, heartbeat_at)"
        " VALUES (%(id)s, 'old-host', 1, '0.0.1', '{clips}', 4,"
        " now() - %(age)s * interval '1 second')",
        {"id": gone, "age": adapter.config.worker_stale_seconds + 1},
    )
    assert [worker.id for worker in await fresh.workers()] == [adapter.registry.id]
    result = await fresh.run_retention()
    assert result.stale_workers == 1
    assert await harness._sql("SELECT id FROM {schema}.workers") == [(adapter.registry.id,)]


async def test_a_swept_worker_registers_again_on_its_next_heartbeat(harness: Harness) -> None:
    adapter = await harness.adapter()

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        return None

    adapter.consume(handle)
    await wait_for(lambda: _count_workers(harness, 1), message="the registration")
    await harness._sql("DELETE FROM {schema}.workers")
    # Whatever swept it (the database away past the horizon), the next beat brings it back.
    await wait_for(lambda: _count_workers(harness, 1), message="the registration again")


async def _count_workers(harness: Harness, count: int) -> bool:
    return await harness._sql("SELECT count(*) FROM {schema}.workers") == [(count,)]


def _pickups(rows: list[QueueStats]) -> tuple[int, float, float]:
    """Picked up, average and largest wait over all the minutes: the claims of a test may
    straddle a minute's end."""
    picked_up = sum(row.picked_up for row in rows)
    weighted = sum(row.pickup_avg_ms * row.picked_up for row in rows)
    largest = max((row.pickup_max_ms for row in rows), default=0.0)
    return picked_up, weighted / picked_up if picked_up else 0.0, largest


async def test_claims_count_pickups_with_their_wait_in_the_stats(harness: Harness) -> None:
    adapter = await harness.adapter()
    jobs = [uuid.uuid4() for _ in range(3)]
    for job in jobs:
        await adapter.publish(QueueMessage(job))
    # Waited: one became runnable 2 s ago and one 4 s ago (the database clock decides).
    await harness._sql(
        "UPDATE {schema}.messages SET run_after = now() - interval '2 seconds'"
        " WHERE job_id = %(job)s",
        {"job": jobs[1]},
    )
    await harness._sql(
        "UPDATE {schema}.messages SET run_after = now() - interval '4 seconds'"
        " WHERE job_id = %(job)s",
        {"job": jobs[2]},
    )
    seen: list[ReceivedMessage] = []

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        seen.append(message)

    adapter.consume(handle, concurrency=3)
    await wait_for(lambda: len(seen) == 3, message="the claims")
    picked_up, average_ms, largest_ms = _pickups(await adapter.stats(queue="clips", minutes=5))
    assert picked_up == 3
    assert 4000 <= largest_ms < 6000
    assert 2000 <= average_ms < 3500  # (about 0 + 2000 + 4000) / 3
    waits = sorted(message.pickup_delay for message in seen)
    assert waits[-1] * 1000 <= largest_ms + 1


async def test_an_expired_lease_waits_from_its_expiry_not_from_its_first_run(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    [first] = await adapter.store.claim("clips", 1, 60)
    # It first became runnable an hour ago; its lease ran out a second ago.
    await harness._sql(
        "UPDATE {schema}.messages SET run_after = now() - interval '1 hour',"
        " lease_until = now() - interval '1 second' WHERE job_id = %(job)s",
        {"job": job},
    )
    [again] = await adapter.store.claim("clips", 1, 60)
    assert (again.job_id, again.attempt) == (first.job_id, 2)
    assert 1.0 <= again.pickup_delay < 30.0
    picked_up, _, largest_ms = _pickups(await adapter.stats(queue="clips", minutes=5))
    assert picked_up == 2
    assert largest_ms < 30_000


async def test_an_idle_claim_writes_no_stats(harness: Harness) -> None:
    adapter = await harness.adapter()
    assert await adapter.store.claim("clips", 5, 60) == []
    assert await adapter.stats(minutes=5) == []


async def test_depth_by_priority(harness: Harness) -> None:
    adapter = await harness.adapter()
    for priority in (0, 0, 2):
        await adapter.publish(QueueMessage(uuid.uuid4(), priority))
    await adapter.publish(QueueMessage(uuid.uuid4(), 2), delay=60)
    await adapter.publish(QueueMessage(uuid.uuid4(), 1), queue="webhooks")
    await adapter.store.claim("clips", 1, 60)  # one of priority 0 becomes active
    assert await adapter.depth_by_priority() == [
        PriorityDepth("clips", 0, ready=1, scheduled=0, active=1),
        PriorityDepth("clips", 2, ready=1, scheduled=1, active=0),
        PriorityDepth("webhooks", 1, ready=1, scheduled=0, active=0),
    ]
