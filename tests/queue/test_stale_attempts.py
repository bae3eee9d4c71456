"""An attempt that lost its lease stops, and settles nothing; systemic failures cost no
attempt; completing inside the application's transaction is fenced like every settle."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import psycopg

from clipper.queue import (
    JobContext,
    LeaseLostError,
    QueueMessage,
    ReceivedMessage,
    SystemicError,
)
from clipper.queue._deadlines import bounded
from tests.helpers import wait_event, wait_for
from tests.queue.conftest import Harness
from tests.queue.test_contract import metric


class Stuck:
    """A handler that runs until it is cancelled, recording why."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.reason: str | None = None

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.reason = context.cancel_reason
            self.cancelled.set()
            raise


async def test_a_lost_lease_cancels_the_running_handler(harness: Harness) -> None:
    adapter = await harness.adapter(visibility_seconds=1.5)  # a heartbeat every 0.5 s
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    handler = Stuck()
    adapter.consume(handler, concurrency=1)
    await wait_event(handler.started)
    await harness.expire_leases()
    [stolen] = await adapter.store.claim("clips", 1, 30)  # another worker took it over
    await wait_event(handler.cancelled, timeout=2.0, what="the handler's cancellation")
    assert handler.reason == "lease lost"
    await wait_for(lambda: metric(adapter, "clipper_queue_lease_lost_total") >= 1)
    assert await harness.state(job) == ("active", 2)  # the new owner's attempt is untouched
    assert metric(adapter, "clipper_queue_retried_total") == 0
    assert stolen.attempt == 2


async def test_a_lease_that_cannot_be_renewed_stops_the_attempt_within_its_window(
    harness: Harness,
) -> None:
    """A hung or dead path to the database: the heartbeat fails, and once a whole visibility
    window has passed unrenewed the attempt stops, since another worker may now own it."""
    adapter = await harness.adapter(visibility_seconds=1.5)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))

    async def unreachable(*args: object, **kwargs: object) -> dict[int, bool]:
        raise OSError("no route to the database")

    handler = Stuck()
    adapter.consume(handler, concurrency=1)
    await wait_event(handler.started)
    began = time.monotonic()
    adapter.store.extend = unreachable  # type: ignore[method-assign]
    await wait_event(handler.cancelled, timeout=3.0, what="the handler's cancellation")
    assert time.monotonic() - began <= 1.5 + 0.3
    assert handler.reason == "lease lost"
    assert metric(adapter, "clipper_queue_lease_lost_total") == 1


async def test_a_systemic_failure_gives_the_message_back_uncharged_and_pauses_claims(
    harness: Harness,
) -> None:
    adapter = await harness.adapter(max_attempts=2)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    calls: list[tuple[float, int]] = []

    async def disk_full_twice(message: ReceivedMessage, context: JobContext) -> None:
        calls.append((time.monotonic(), message.attempt))
        if len(calls) <= 2:
            raise SystemicError("no space left on the data folder", code="STORAGE_FULL")

    adapter.consume(disk_full_twice)
    await wait_for(lambda: len(calls) == 3, message="three runs")
    await wait_for(lambda: _completed(harness, job), message="completion")
    # Two systemic failures with max_attempts=2 did not dead-letter: no attempt was charged.
    assert [attempt for _, attempt in calls] == [1, 1, 1]
    assert await harness.state(job) == ("completed", 1)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(calls)]
    assert gaps[0] >= 0.45  # paused 0.5 s,
    assert gaps[1] >= 0.95  # then 1 s: backing off
    assert (
        metric(adapter, "clipper_queue_systemic_failures_total", queue="clips", code="STORAGE_FULL")
        == 2
    )
    assert metric(adapter, "clipper_queue_dead_lettered_total") == 0


async def _completed(harness: Harness, job: uuid.UUID) -> bool:
    return await harness.state(job) == ("completed", 1)


async def _marks(db_url: str) -> list[uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cursor = await conn.execute("SELECT job_id FROM marks")
        return [row[0] for row in await cursor.fetchall()]


async def _make_marks_table(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE marks (job_id uuid NOT NULL)")


async def test_complete_commits_with_the_applications_writes(harness: Harness) -> None:
    db_url = harness.db_url
    await _make_marks_table(db_url)
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))

    async def finish_in_one_transaction(message: ReceivedMessage, context: JobContext) -> None:
        async with (
            await psycopg.AsyncConnection.connect(db_url) as conn,
            conn.transaction(),
        ):
            await conn.execute("INSERT INTO marks VALUES (%s)", (message.job_id,))
            await context.complete(conn)

    adapter.consume(finish_in_one_transaction)
    await wait_for(lambda: _completed(harness, job), message="completion")
    assert await _marks(db_url) == [job]
    await wait_for(lambda: metric(adapter, "clipper_queue_completed_total") == 1)
    assert metric(adapter, "clipper_queue_lease_lost_total") == 0


async def test_a_stale_attempt_cannot_complete_and_its_writes_roll_back(
    harness: Harness,
) -> None:
    db_url = harness.db_url
    await _make_marks_table(db_url)
    adapter = await harness.adapter(visibility_seconds=30)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, go_on = asyncio.Event(), asyncio.Event()
    refused: list[LeaseLostError] = []

    async def finish_late(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await go_on.wait()
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            try:
                async with conn.transaction():
                    await conn.execute("INSERT INTO marks VALUES (%s)", (message.job_id,))
                    await context.complete(conn)
            except LeaseLostError as exc:
                refused.append(exc)
                raise

    adapter.consume(finish_late, concurrency=1)
    await wait_event(started)
    await harness.expire_leases()
    [stolen] = await adapter.store.claim("clips", 1, 30)  # the new owner, before the old ends
    go_on.set()
    await wait_for(lambda: refused, message="the refused completion")
    assert await _marks(db_url) == []  # the stale attempt's own writes rolled back
    assert await harness.state(job) == ("active", 2)
    assert await adapter.store.complete([stolen.claim]) == {stolen.claim.message_id}


async def test_bounded_gives_up_without_waiting_for_the_work_to_unwind() -> None:
    """psycopg unwinds a cancelled query by trying to cancel it on the server, which on a dead
    path takes seconds more: the deadline must not include that."""
    unwinding = asyncio.Event()

    async def hung_query() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            unwinding.set()
            await asyncio.shield(asyncio.sleep(0.5))  # a slow cleanup
            raise

    began = time.monotonic()
    try:
        await bounded(hung_query(), 0.1)
    except TimeoutError:
        pass
    else:
        raise AssertionError("bounded() returned without a timeout")
    assert time.monotonic() - began < 0.3
    await wait_event(unwinding, what="the abandoned work's cleanup")
