"""The queue contract: what publishing, consuming, settling and dead-lettering promise."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta

import pytest
from prometheus_client import generate_latest

from clipper.queue import (
    DeadLetter,
    ErrorInfo,
    JobContext,
    LeaseLostError,
    PermanentError,
    QueueMessage,
    ReceivedMessage,
    RetryNotice,
)
from clipper.queue._hooks import SettleOptions
from tests.helpers import wait_event, wait_for
from tests.queue.conftest import Harness


class Recorder:
    """A handler that records what it ran; `fail_until` attempts raise first."""

    def __init__(self, fail_until: int = 0, error: type[Exception] = RuntimeError) -> None:
        self.seen: list[ReceivedMessage] = []
        self.started_at: list[float] = []
        self.fail_until = fail_until
        self.error = error

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        self.seen.append(message)
        self.started_at.append(time.monotonic())
        if context.attempt <= self.fail_until:
            raise self.error(f"boom on attempt {context.attempt}")

    def jobs(self) -> list[uuid.UUID]:
        return [message.job_id for message in self.seen]


# Three priorities, as an application would use them: lower runs first.
FAST, NORMAL, BULK = 0, 1, 2


def metric(adapter: object, name: str, **labels: str) -> float:
    registry = adapter.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, labels or {"queue": "clips"})
    return value or 0.0


async def test_publish_then_consume_delivers_the_message_once(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    assert await adapter.publish(QueueMessage(job, FAST, {"clip": 1}))
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: recorder.seen, message="delivery")
    await wait_for(lambda: _state_is(harness, job, "completed"), message="ack")
    [message] = recorder.seen
    assert (message.job_id, message.priority, message.payload) == (job, FAST, {"clip": 1})
    assert (message.attempt, message.max_attempts) == (1, 3)
    assert metric(adapter, "clipper_queue_published_total") == 1
    assert metric(adapter, "clipper_queue_completed_total") == 1


async def _state_is(harness: Harness, job: uuid.UUID, state: str, queue: str = "clips") -> bool:
    found = await harness.state(job, queue)
    return found is not None and found[0] == state


async def test_publishing_a_job_id_twice_is_a_noop(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    assert await adapter.publish(QueueMessage(job)) is True
    assert await adapter.publish(QueueMessage(job, BULK)) is False
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, job, "completed"))
    assert await adapter.publish(QueueMessage(job)) is False  # also once it has finished
    assert recorder.jobs() == [job]
    assert metric(adapter, "clipper_queue_duplicate_publishes_total") == 2


async def test_fast_runs_before_normal_before_bulk_fifo_within_each(harness: Harness) -> None:
    adapter = await harness.adapter()
    published: dict[int, list[uuid.UUID]] = {p: [] for p in (FAST, NORMAL, BULK)}
    for index in range(9):
        priority = [BULK, NORMAL, FAST][index % 3]
        job = uuid.uuid4()
        published[priority].append(job)
        await adapter.publish(QueueMessage(job, priority))
    recorder = Recorder()
    adapter.consume(recorder, concurrency=1)
    await wait_for(lambda: len(recorder.seen) == 9, message="all nine")
    expected = published[FAST] + published[NORMAL] + published[BULK]
    assert recorder.jobs() == expected


async def test_failures_back_off_exponentially_then_dead_letter(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=3, backoff_base_ms=100)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job, payload={"n": 1}))
    recorder = Recorder(fail_until=99)
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, job, "failed"), message="dead letter")
    assert [m.attempt for m in recorder.seen] == [1, 2, 3]  # QUEUE_MAX_ATTEMPTS runs in total
    gaps = [b - a for a, b in zip(recorder.started_at, recorder.started_at[1:], strict=False)]
    assert gaps[0] >= 0.100, gaps  # the backoff is honoured from the first retry
    assert gaps[1] >= 0.200, gaps
    [entry] = await adapter.list_dead_letters()
    letter = entry.letter
    assert (letter.job_id, letter.source_queue, letter.attempts) == (job, "clips", 3)
    assert letter.payload == {"n": 1}
    assert (letter.error.type, letter.error.message) == ("RuntimeError", "boom on attempt 3")
    assert "Traceback" in letter.error.traceback
    assert letter.failed_at >= letter.enqueued_at
    assert metric(adapter, "clipper_queue_retried_total") == 2
    assert metric(adapter, "clipper_queue_dead_lettered_total") == 1


async def test_permanent_error_skips_the_remaining_attempts(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=5)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    recorder = Recorder(fail_until=99, error=PermanentError)
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, job, "failed"))
    assert len(recorder.seen) == 1
    assert await harness.state(job, "clips.dlq") == ("ready", 0)


async def test_retry_wakes_consumers_on_time_not_at_the_next_poll(harness: Harness) -> None:
    adapter = await harness.adapter(poll_interval_seconds=30, backoff_base_ms=200)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    recorder = Recorder(fail_until=1)
    adapter.consume(recorder)
    await wait_for(lambda: len(recorder.seen) == 2, timeout=5, message="the retry")
    gap = recorder.started_at[1] - recorder.started_at[0]
    assert 0.2 <= gap < 2.0, gap


async def test_dead_letter_hook_sees_the_letter(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=1)
    letters: list[DeadLetter] = []

    async def hook(letter: DeadLetter, conn: object) -> None:
        letters.append(letter)

    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    adapter.consume(Recorder(fail_until=1), on_dead_letter=hook)
    await wait_for(lambda: letters, message="the hook")
    assert letters[0].job_id == job
    assert letters[0].error.type == "RuntimeError"


async def test_a_stale_attempt_cannot_settle_the_newer_one(harness: Harness) -> None:
    """Fencing: after its lease expired and the message was claimed again, the first owner's
    acknowledgement is refused and counted, and the second owner's attempt is untouched."""
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    store = adapter.store
    [first] = await store.claim("clips", 1, 30)
    await harness.expire_leases()
    [second] = await store.claim("clips", 1, 30)
    assert (first.attempt, second.attempt) == (1, 2)
    assert await store.complete([first.claim]) == set()
    assert await store.retry(first.claim, 0, _error(), SettleOptions("clips.dlq")) is None
    assert await store.dead_letter(first.claim, _error(), SettleOptions("clips.dlq")) is None
    assert await store.extend([first.claim], 30) == {}
    assert await harness.state(job) == ("active", 2)
    assert await store.complete([second.claim]) == {second.claim.message_id}


def _error() -> ErrorInfo:
    return ErrorInfo("RuntimeError", "late")


async def test_lost_lease_is_reported_to_the_handler_and_counted(harness: Harness) -> None:
    adapter = await harness.adapter(visibility_seconds=30)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, release = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def slow(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await release.wait()
        try:
            await context.extend_lease()
        except LeaseLostError:
            outcome.append("lost")
            raise

    adapter.consume(slow, concurrency=1)  # its one slot is busy: only the test reclaims
    await wait_event(started)
    await harness.expire_leases()
    [stolen] = await adapter.store.claim("clips", 1, 30)
    release.set()
    await wait_for(lambda: outcome == ["lost"], message="LeaseLostError")
    await wait_for(lambda: metric(adapter, "clipper_queue_lease_lost_total") >= 1)
    assert await harness.state(job) == ("active", 2)  # the new owner's attempt stands
    assert stolen.attempt == 2


async def test_heartbeats_keep_a_long_job_from_being_redelivered(harness: Harness) -> None:
    adapter = await harness.adapter(visibility_seconds=2.4)  # heartbeat every 0.8 s
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, finished = asyncio.Event(), asyncio.Event()

    async def long_job(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await asyncio.sleep(5.0)  # the job's own work: over two lease windows
        finished.set()

    recorder = Recorder()
    adapter.consume(long_job)
    await wait_event(started)  # from here only an expired lease could hand it to `other`
    other = await harness.adapter(visibility_seconds=2.4)
    other.consume(recorder)
    await wait_event(finished)
    await wait_for(lambda: _state_is(harness, job, "completed"))
    assert recorder.seen == []
    assert await harness.state(job) == ("completed", 1)


async def test_expired_lease_on_the_last_attempt_is_dead_lettered(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=1, poll_interval_seconds=0.1)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    await adapter.store.claim("clips", 1, 30)  # a worker that then dies
    await harness.expire_leases()
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, job, "failed"), message="sweep to DLQ")
    [entry] = await adapter.list_dead_letters()
    assert entry.letter.error.type == "LeaseExpired"
    assert recorder.seen == []


async def test_shutdown_lets_running_handlers_finish_within_grace(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started = asyncio.Event()

    async def short(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        await asyncio.sleep(0.2)

    adapter.consume(short)
    await wait_event(started)
    await adapter.shutdown(grace_seconds=5)
    assert await harness.state(job) == ("completed", 1)


async def test_shutdown_cancels_overdue_handlers_without_using_an_attempt(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    adapter.consume(stuck)
    await wait_event(started)
    began = time.monotonic()
    await adapter.shutdown(grace_seconds=0.3)
    assert time.monotonic() - began < 2.0
    assert cancelled.is_set()
    assert await harness.state(job) == ("ready", 0)
    recorder = Recorder()
    (await harness.adapter()).consume(recorder)
    await wait_for(lambda: recorder.seen, message="redelivery")
    assert recorder.seen[0].attempt == 1


async def test_a_handler_ignoring_cancellation_does_not_hold_its_message(
    harness: Harness,
) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    started, let_go = asyncio.Event(), asyncio.Event()

    async def stubborn(message: ReceivedMessage, context: JobContext) -> None:
        started.set()
        while not let_go.is_set():
            try:
                await let_go.wait()
            except asyncio.CancelledError:
                continue  # swallows cancellation, as badly written handlers do

    adapter.consume(stubborn)
    await wait_event(started)
    await asyncio.wait_for(adapter.shutdown(grace_seconds=0.2), timeout=5)
    assert await harness.state(job) == ("ready", 0)  # available again at once
    let_go.set()


async def test_redrive_puts_dead_letters_back_with_fresh_attempts(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=2)
    jobs = [uuid.uuid4(), uuid.uuid4()]
    for job in jobs:
        await adapter.publish(QueueMessage(job, payload={"job": str(job)}))
    failing = Recorder(fail_until=99)
    consumer = adapter.consume(failing)
    await wait_for(lambda: len(failing.seen) == 4, message="both exhausted")
    await wait_for(lambda: _state_is(harness, jobs[1], "failed"))
    await consumer.stop()
    assert sorted(await adapter.redrive([jobs[0]])) == [jobs[0]]
    assert await harness.state(jobs[0]) == ("ready", 0)
    assert await harness.state(jobs[0], "clips.dlq") is None
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: _state_is(harness, jobs[0], "completed"))
    assert [(m.job_id, m.attempt, m.payload) for m in recorder.seen] == [
        (jobs[0], 1, {"job": str(jobs[0])})
    ]
    assert await adapter.redrive() == [jobs[1]]


async def test_dlq_consumer_logs_and_alerts(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = await harness.adapter(max_attempts=1)
    alerts: list[DeadLetter] = []

    async def alert(letter: DeadLetter) -> None:
        alerts.append(letter)

    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    adapter.consume(Recorder(fail_until=1))
    with caplog.at_level(logging.ERROR, logger="clipper.queue.dlq"):
        adapter.start_dlq_consumer(alert)
        await wait_for(lambda: alerts, message="the alert")
    assert alerts[0].job_id == job
    assert alerts[0].attempts == 1
    record = next(r for r in caplog.records if r.name == "clipper.queue.dlq")
    assert record.levelno == logging.ERROR
    assert getattr(record, "job_id", None) == str(job)
    assert getattr(record, "attempts", None) == 1
    assert getattr(record, "error_type", None) == "RuntimeError"
    await wait_for(lambda: _state_is(harness, job, "completed", "clips.dlq"))


async def test_retention_deletes_old_finished_messages_only(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=1, retention_hours=1, retention_batch_size=2)
    done, dead, waiting = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for job in (done, dead):
        await adapter.publish(QueueMessage(job))

    async def handler(message: ReceivedMessage, context: JobContext) -> None:
        if message.job_id == dead:
            raise PermanentError("no")

    consumer = adapter.consume(handler)
    await wait_for(lambda: _state_is(harness, dead, "failed"))
    await wait_for(lambda: _state_is(harness, done, "completed"))
    await consumer.stop()
    await adapter.publish(QueueMessage(waiting))
    assert (await adapter.run_retention()).deleted == 0  # nothing old enough yet
    await harness.age_finished(hours=2)
    result = await adapter.run_retention()
    assert result.deleted == 2
    assert await harness.state(done) is None
    assert await harness.state(dead) is None
    assert await harness.state(waiting) == ("ready", 0)
    assert await harness.state(dead, "clips.dlq") == ("ready", 0)  # unfinished: kept


async def test_health_and_metrics_report_depth(harness: Harness) -> None:
    adapter = await harness.adapter()
    for _ in range(3):
        await adapter.publish(QueueMessage(uuid.uuid4()))
    await adapter.publish(QueueMessage(uuid.uuid4()), delay=60)
    report = await adapter.health()
    assert report.ok, report.detail
    [depth] = await adapter.depth()
    assert (depth.queue, depth.ready, depth.scheduled, depth.active) == ("clips", 3, 1, 0)

    def scrape() -> str:
        return generate_latest(adapter.metrics.registry).decode()

    # The depth is a snapshot refreshed every poll interval: a scrape never waits on the
    # database.
    await wait_for(
        lambda: 'clipper_queue_depth{queue="clips",state="ready"} 3.0' in scrape(),
        message="the depth snapshot",
    )
    text = scrape()
    assert 'clipper_queue_depth{queue="clips",state="scheduled"} 1.0' in text
    assert "clipper_queue_oldest_ready_age_seconds" in text


async def test_messages_claimed_during_shutdown_go_back_at_once(harness: Harness) -> None:
    adapter = await harness.adapter()
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    store = adapter.store
    claim_sent, stop_requested = asyncio.Event(), asyncio.Event()
    real_claim = store.claim

    async def claim_in_flight(
        queue: str, limit: int, visibility: float, group_cap: int | None = None
    ) -> list[ReceivedMessage]:
        claimed = await real_claim(queue, limit, visibility, group_cap)
        claim_sent.set()
        await stop_requested.wait()  # the answer arrives after shutdown began
        return claimed

    store.claim = claim_in_flight  # type: ignore[method-assign]
    recorder = Recorder()
    consumer = adapter.consume(recorder)
    await wait_event(claim_sent)
    stopping = asyncio.create_task(consumer.stop(grace_seconds=5))
    await wait_for(lambda: consumer._stopping.is_set(), message="stop under way")
    stop_requested.set()
    await stopping
    assert recorder.seen == []  # never started
    assert await harness.state(job) == ("ready", 0)  # back at once, attempt not counted
    assert metric(adapter, "clipper_queue_released_total") == 1


async def test_retry_hook_learns_when_the_next_attempt_runs(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=3, backoff_base_ms=100)
    notices: list[RetryNotice] = []

    async def on_retry(notice: RetryNotice, conn: object) -> None:
        notices.append(notice)

    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job))
    recorder = Recorder(fail_until=2)
    adapter.consume(recorder, on_retry=on_retry)
    await wait_for(lambda: _state_is(harness, job, "completed"), message="third attempt")
    assert [(n.job_id, n.attempt) for n in notices] == [(job, 1), (job, 2)]
    assert notices[0].error.message == "boom on attempt 1"
    assert notices[1].run_after - notices[0].run_after >= timedelta(milliseconds=200)


async def test_requeue_runs_a_dead_letter_again_and_drops_the_letter(harness: Harness) -> None:
    adapter = await harness.adapter(max_attempts=1)
    job = uuid.uuid4()
    await adapter.publish(QueueMessage(job, payload={"v": 1}))
    consumer = adapter.consume(Recorder(fail_until=1))
    await wait_for(lambda: _state_is(harness, job, "failed"))
    await consumer.stop()
    assert await adapter.requeue(QueueMessage(job, FAST, {"v": 2})) is True
    assert await adapter.requeue(QueueMessage(job)) is False  # queued again: nothing to do
    assert await harness.state(job) == ("ready", 0)
    assert await harness.state(job, "clips.dlq") is None
    recorder = Recorder()
    adapter.consume(recorder)
    await wait_for(lambda: recorder.seen, message="the requeued run")
    assert (recorder.seen[0].attempt, recorder.seen[0].payload) == (1, {"v": 2})
