"""The worker's lifecycle of a job, through the real queue: events in order, retries, dead
letters written with the queue's own transaction, idempotent redelivery."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clipper.db.models import DlqJob, Job
from clipper.db.repositories import JOB_CHANGES_CHANNEL, JobRepository
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import SourceType
from clipper.domain.tenancy import OPERATOR
from clipper.queue import JobContext, QueueAdapter, QueueMessage
from clipper.services.jobs import create_job
from clipper.services.processing import ClipResult, JobRunner, Processor, Progress
from clipper.storage import LocalStorage
from tests.helpers import wait_event, wait_for
from tests.queue.conftest import fast_config

REQUEST = ClipRequest(SourceType.UPLOAD, 0, 10_000, upload_key="up_1")
KEEP = timedelta(hours=72)


async def _create(sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter) -> Job:
    async with sessions.begin() as session:
        return (await create_job(session, queue, REQUEST, OPERATOR)).job


async def _job(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        job = await JobRepository(session).get(job_id)
    assert job is not None
    return job


async def _events(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        return [event.type for event in await JobRepository(session).events(job_id)]


async def _status_is(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID, status: str
) -> bool:
    return (await _job(sessions, job_id)).status == status


def _consume(queue: QueueAdapter, engine: AsyncEngine, runner: JobRunner) -> None:
    queue.consume(
        runner,
        on_retry=runner.on_retry,
        on_dead_letter=runner.on_dead_letter,
        transaction=engine.begin,
    )


async def test_a_job_runs_to_done_with_its_events_in_order(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    async def cut(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        for percent in (0, 50, 100):
            await progress(percent, "cut")
        return ClipResult(f"results/{job.id}/clip.mp4")

    job = await _create(sessions, queue)
    _consume(queue, engine, JobRunner(sessions, {"upload": cut}, KEEP))
    await wait_for(lambda: _status_is(sessions, job.id, "done"), message="done")
    done = await _job(sessions, job.id)
    assert (done.progress, done.attempts) == (100, 1)
    assert done.result_video_key == f"results/{job.id}/clip.mp4"
    assert done.expires_at is not None
    assert abs(done.expires_at - (datetime.now(UTC) + KEEP)) < timedelta(minutes=1)
    events = await _events(sessions, job.id)
    assert events == ["created", "processing", "progress", "progress", "progress", "done"]


async def test_a_failing_processor_retries_then_fails_with_a_dead_letter_record(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    calls = 0

    async def broken(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        nonlocal calls
        calls += 1
        raise OSError("disk full")

    job = await _create(sessions, queue)
    _consume(queue, engine, JobRunner(sessions, {"upload": broken}, KEEP))
    await wait_for(lambda: _status_is(sessions, job.id, "failed"), message="failed")
    assert calls == 3
    failed = await _job(sessions, job.id)
    assert (failed.error_code, failed.error_message) == ("PROCESSING_FAILED", "disk full")
    assert await _events(sessions, job.id) == [
        "created",
        "processing",
        "retry",
        "processing",
        "retry",
        "processing",
        "failed",
        "dlq",
    ]
    async with sessions() as session:
        record = await session.get(DlqJob, job.id)
        retry = (await JobRepository(session).events(job.id))[2]
    assert record is not None
    assert record.payload["attempts"] == 3
    assert record.payload["request"]["uploadKey"] == "up_1"
    assert retry.payload["attempt"] == 1
    assert retry.payload["error"] == "OSError: disk full"
    assert datetime.fromisoformat(retry.payload["next_run_at"]) > retry.created_at


async def test_a_job_without_a_processor_fails_at_once_with_its_code(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    job = await _create(sessions, queue)
    _consume(queue, engine, JobRunner(sessions, {}, KEEP))
    await wait_for(lambda: _status_is(sessions, job.id, "failed"), message="failed")
    failed = await _job(sessions, job.id)
    assert (failed.error_code, failed.attempts) == ("NO_PROCESSOR", 1)


async def test_redelivery_of_a_finished_job_does_no_work_again(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    runs: list[int] = []

    async def cut(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        runs.append(context.attempt)
        return ClipResult("results/x/clip.mp4")

    job = await _create(sessions, queue)
    runner = JobRunner(sessions, {"upload": cut}, KEEP)
    _consume(queue, engine, runner)
    await wait_for(lambda: _status_is(sessions, job.id, "done"))
    await wait_for(lambda: _message_done(sessions, job.id), message="the first acknowledgement")
    async with sessions.begin() as session:  # the queue hands the message out once more
        await session.execute(
            text(
                "UPDATE clipper_queue.messages SET state = 'ready', finished_at = NULL "
                "WHERE job_id = :j"
            ),
            {"j": job.id},
        )
    await queue.publish(QueueMessage(uuid.uuid4()))  # wake the consumer; a job-less message
    await wait_for(lambda: runner.missing_jobs._value.get() == 1, message="the job-less message")
    await wait_for(lambda: _message_done(sessions, job.id), message="redelivery acknowledged")
    assert runs == [1]
    assert (await _events(sessions, job.id)).count("done") == 1


async def _message_done(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> bool:
    async with sessions() as session:
        state = await session.scalar(
            text("SELECT state FROM clipper_queue.messages WHERE job_id = :j"), {"j": job_id}
        )
    return bool(state == "completed")


async def test_progress_is_debounced_but_always_rises(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    async def chatty(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        for tenth in range(1001):  # 0.0, 0.1, … 100.0 percent
            await progress(tenth // 10, "encode")
        return ClipResult("results/x/clip.mp4")

    processors: dict[str, Processor] = {"upload": chatty}
    job = await _create(sessions, queue)
    _consume(queue, engine, JobRunner(sessions, processors, KEEP))
    await wait_for(lambda: _status_is(sessions, job.id, "done"))
    async with sessions() as session:
        events = await JobRepository(session).events(job.id)
        progress = await session.scalar(select(Job.progress).where(Job.id == job.id))
    percents = [event.payload["pct"] for event in events if event.type == "progress"]
    assert percents == list(range(101))  # one event per point, not one per call
    assert progress == 100


async def test_live_streams_are_told_of_progress_in_steps_not_of_every_point(
    db_url: str,
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    engine: AsyncEngine,
) -> None:
    """Every committing NOTIFY costs the whole database a little: of 101 progress points,
    the streams hear of one each 5 points (and of a new stage at once), and of the end."""

    async def stages(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        for percent in range(101):
            await progress(percent, "probe" if percent < 5 else "encode")
        return ClipResult("results/x/clip.mp4")

    heard: list[str] = []
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {JOB_CHANGES_CHANNEL}")

        async def listen() -> None:
            async for notice in listener.notifies():
                heard.append(notice.payload)

        listening = asyncio.create_task(listen())
        job = await _create(sessions, queue)
        _consume(queue, engine, JobRunner(sessions, {"upload": stages}, KEEP))
        await wait_for(lambda: _status_is(sessions, job.id, "done"))
        events = await _events(sessions, job.id)
        await wait_for(lambda: heard.count(str(job.id)) >= 23, message="the notifications")
        listening.cancel()
    assert events.count("progress") == 101
    # 0, the new stage at 5, then 10 … 100 (a quiet second may add one), and the job's own
    # events (queued, processing, done): far from one per point.
    assert 23 <= heard.count(str(job.id)) <= 30, heard.count(str(job.id))


async def test_a_stale_attempt_cannot_finish_a_job_another_attempt_finished(
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    engine: AsyncEngine,
    db_url: str,
    tmp_path: Path,
) -> None:
    """Attempt 1 stores its clip, then stalls past its lease; attempt 2 (another worker)
    finishes the job. When attempt 1 goes on, its completion is refused inside its own
    transaction: one `done` event, the row and the winner's result untouched, the stale
    attempt's files deleted, its progress never written over the winner's."""
    storage = LocalStorage(tmp_path)
    stored, resume = asyncio.Event(), asyncio.Event()

    async def cut(job: Job, progress: Progress, context: JobContext) -> ClipResult:
        key = f"results/{job.id}/{context.attempt}/clip.mp4"
        source = tmp_path / f"made-{context.attempt}.mp4"
        source.write_bytes(f"clip of attempt {context.attempt}".encode())
        await storage.put_file(key, source)
        if context.attempt == 1:
            stored.set()
            await resume.wait()  # frozen "at the moment its result is stored"
            await progress(99, "store")  # a late write of the stale attempt
        return ClipResult(key)

    job = await _create(sessions, queue)
    stale = JobRunner(sessions, {"upload": cut}, KEEP, storage=storage)
    # A long lease and no heartbeats for the first consumer: only the test expires it.
    slow = QueueAdapter(db_url, fast_config(visibility_seconds=30))
    await slow.start()
    try:
        _consume(slow, engine, stale)
        await wait_event(stored, what="attempt 1's stored result")
        await _expire_lease(sessions, job.id)
        _consume(queue, engine, JobRunner(sessions, {"upload": cut}, KEEP, storage=storage))
        await wait_for(lambda: _status_is(sessions, job.id, "done"), message="attempt 2 done")
        winner = await _job(sessions, job.id)
        resume.set()
        await wait_for(
            lambda: slow.metrics.registry.get_sample_value(
                "clipper_queue_lease_lost_total", {"queue": "clips"}
            ),
            message="the stale completion refused",
        )
        await wait_for(
            lambda: not (tmp_path / f"results/{job.id}/1/clip.mp4").exists(),
            message="the stale result deleted",
        )
    finally:
        await slow.shutdown(grace_seconds=0)
    after = await _job(sessions, job.id)
    assert (after.updated_at, after.result_video_key, after.attempts) == (
        winner.updated_at,
        f"results/{job.id}/2/clip.mp4",
        2,
    )
    assert (tmp_path / f"results/{job.id}/2/clip.mp4").read_bytes() == b"clip of attempt 2"
    events = await _events(sessions, job.id)
    assert events.count("done") == 1
    assert events[-1] == "done"  # nothing of the stale attempt after it


async def _expire_lease(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await session.execute(
            text(
                "UPDATE clipper_queue.messages SET lease_until = now() - interval '1 second' "
                "WHERE job_id = :j"
            ),
            {"j": job_id},
        )
