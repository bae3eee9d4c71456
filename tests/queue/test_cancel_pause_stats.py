"""Cancel, pause and resume, bulk publish, and the per-minute stats: each on real PostgreSQL,
across adapters (as across worker processes)."""

from __future__ import annotations

import asyncio
import time
import uuid

from clipper.queue import (
    CancelOutcome,
    JobContext,
    QueueMessage,
    ReceivedMessage,
)
from tests.helpers import wait_event, wait_for
from tests.queue.conftest import Harness
from tests.queue.test_contract import Recorder, metric
from tests.queue.test_stale_attempts import Stuck


async def test_cancelling_a_waiting_message_ends_it_before_it_runs(harness: Harness) -> None:
    adapter = await harness.adapter()
    ready, scheduled = uuid.uuid4(), uuid.uuid4()
    await adapter.publish(QueueMessage(ready))
    await adapter.publish(QueueMessage(scheduled), delay=60)
    assert await adapter.cancel(ready) is CancelOutcome.CANCELLED
    assert await adapter.cancel(scheduled) is CancelOutcome.CANCELLED
    assert await adapter.cancel(ready) is CancelOutcome.FINISHED  # repeating is harmless
    assert await adapter.cancel(uuid.uuid4()) is CancelOutcome.NOT_FOUND
    recorder = Recorder()
    adapter.consume(recorder)
    other = uuid.uuid4()
    await adapter.publish(QueueMessage(other))
    await wait_for(lambda: recorder.seen, message="the next message")
    assert [message.job_id for message in recorder.seen] == [other]
    assert await harness.state(ready) == ("cancelled", 0)
    assert await harness.state(scheduled) == ("cancelled", 0)


async def test_cancelling_a_running_message_stops_its_handler_in_another_process(
    harness: Harness,
) -> None:
    """The consumer runs in one adapter (a worker), the cancel comes from another (the API):
    the handler is cancelled within a second, told why, and the message ends cancelled, not
    retried and not dead-lettered."""
    worker = await harness.adapter(visibility_seconds=30)  # no heartbeat within the test
    api = await harness.adapter()
    job = uuid.uuid4()
    await api.publish(QueueMessage(job))
    handler = Stuck()
    worker.consume(handler)
    await wait_event(handler.started)
    await wait_for(lambda: worker.listener.alive, message="the worker listening")
    asked = time.monotonic()
    assert await api.cancel(job) is CancelOutcome.CANCELLING
    await wait_event(handler.cancelled, timeout=1.0, what="the handler's cancellation")
    assert time.monotonic() - asked < 1.0
    assert handler.reason == "cancelled"
    await wait_for(lambda: _state_is(harness, job, "cancelled"), message="cancelled")
    assert metric(worker, "clipper_queue_retried_total") == 0
    assert metric(worker, "clipper_queue_dead_lettered_total") == 0
    assert await api.cancel(job) is CancelOutcome.FINISHED


async def test_a_missed_cancel_notification_is_caught_by_the_heartbeat(harness: Harness) -> None:
    worker = await harness.adapter(visibility_seconds=1.5)  # a heartbeat every 0.5 s
    job = uuid.uuid4()
    await worker.publish(QueueMessage(job))
    handler = Stuck()
    worker.consume(handler)
    await wait_event(handler.started)
    # The request as cancel() writes it, without its NOTIFY (a listener that was reconnecting).
    await harness._sql(
        "UPDATE {schema}.messages SET cancel_requested_at = now() WHERE job_id = %(j)s",
        {"j": job},
    )
    await wait_event(handler.cancelled, timeout=2.0, what="cancellation by heartbeat")
    await wait_for(lambda: _state_is(harness, job, "cancelled"), message="cancelled")


async def test_a_cancel_whose_worker_died_ends_when_the_lease_runs_out(harness: Harness) -> None:
    adapter = await harness.adapter(poll_interval_seconds=0.1)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    await adapter.store.claim("clips", 1, 30)  # a worker that then dies
    assert await adapter.cancel(job) is CancelOutcome.CANCELLING
    await harness.expire_leases()
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, job, "cancelled"), message="swept as cancelled")
    assert recorder.seen == []  # never run again
    assert await adapter.list_dead_letters() == []


async def _state_is(harness: Harness, job: uuid.UUID, state: str) -> bool:
    found = await harness.state(job)
    return found is not None and found[0] == state


async def test_pause_stops_claims_everywhere_and_resume_restarts_them(harness: Harness) -> None:
    workers = [await harness.adapter() for _ in range(2)]
    admin = await harness.adapter()
    recorders = [Recorder(), Recorder()]
    for worker, recorder in zip(workers, recorders, strict=True):
        worker.consume(recorder)
    await admin.pause()
    assert await admin.paused_queues() == ["clips"]
    jobs = [uuid.uuid4() for _ in range(5)]
    for job in jobs:
        await admin.publish(QueueMessage(job))
    # Published and woken for, but paused: nothing is claimed for a while (several polls).
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert all(recorder.seen == [] for recorder in recorders)
        await asyncio.sleep(0.05)
    resumed = time.monotonic()
    await admin.resume()
    await wait_for(lambda: sum(len(recorder.seen) for recorder in recorders) == 5, timeout=1.0)
    assert time.monotonic() - resumed < 1.0  # woken, not left to their next poll
    assert await admin.paused_queues() == []


async def test_a_running_attempt_finishes_after_a_pause(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, go_on = asyncio.Event(), asyncio.Event()

    async def slow(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await go_on.wait()

    adapter.consume(slow)
    await wait_event(started)
    await adapter.pause()
    go_on.set()
    await wait_for(lambda: _state_is(harness, job, "completed"), message="completed")


async def test_publish_many_is_one_statement_idempotent_per_job_id(harness: Harness) -> None:
    adapter = await harness.adapter()
    first = [QueueMessage(uuid.uuid4(), priority=index % 3) for index in range(1000)]
    assert await adapter.publish_many(first) == [message.job_id for message in first]
    again = [*first[:10], QueueMessage(uuid.uuid4()), first[0]]  # repeats, one new
    assert await adapter.publish_many(again) == [again[10].job_id]
    assert metric(adapter, "clipper_queue_published_total") == 1001
    assert metric(adapter, "clipper_queue_duplicate_publishes_total") == 11
    recorder = Recorder()
    adapter.consume(recorder, concurrency=8)
    await wait_for(lambda: len(recorder.seen) == 1001, timeout=30, message="every message")
    assert len({message.job_id for message in recorder.seen}) == 1001


async def test_stats_count_finished_work_per_minute_without_scanning(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=2)
    done = [uuid.uuid4() for _ in range(3)]
    failing, cancelled = uuid.uuid4(), uuid.uuid4()
    await adapter.publish(QueueMessage(cancelled), delay=60)
    assert await adapter.cancel(cancelled) is CancelOutcome.CANCELLED
    for job in done:
        await adapter.publish(QueueMessage(job))
    await adapter.publish(QueueMessage(failing))

    async def handle(message: ReceivedMessage, context: JobContext) -> None:
        if message.job_id == failing:
            raise RuntimeError("boom")

    adapter.consume(handle)
    await wait_for(lambda: _state_is(harness, failing, "failed"), message="the dead letter")
    await wait_for(lambda: _state_is(harness, done[-1], "completed"), message="completions")

    async def totals() -> tuple[int, int, int, int, int]:
        rows = [row for row in await adapter.stats(minutes=5) if row.queue == "clips"]
        return (
            sum(r.completed for r in rows),
            sum(r.retried for r in rows),
            sum(r.failed for r in rows),
            sum(r.dead_lettered for r in rows),
            sum(r.cancelled for r in rows),
        )

    async def counted() -> bool:
        return await totals() == (3, 1, 1, 1, 1)

    await wait_for(counted, message="the stats")
    # Retention keeps a recent minute and prunes an old one.
    await harness._sql(
        "INSERT INTO {schema}.stats (queue, minute, shard, completed)"
        " VALUES ('clips', now() - interval '30 days', 0, 9)"
    )
    await adapter.run_retention()
    old = await harness._sql(
        "SELECT count(*) FROM {schema}.stats WHERE minute < now() - interval '1 day'"
    )
    assert old == [(0,)]
    assert await totals() == (3, 1, 1, 1, 1)
