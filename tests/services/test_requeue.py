"""Requeueing failed jobs: the job row, its dead-letter record and its queue message change
together, the `requeued` event keeps the error, and only failed jobs move (once)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from clipper.db.models import DlqJob, Job, JobEvent
from clipper.db.repositories import JobRepository
from clipper.domain.clips import ClipRequest
from clipper.domain.jobs import SourceType
from clipper.domain.tenancy import OPERATOR
from clipper.media.errors import SubtitleFontsMissingError
from clipper.queue import Consumer, JobContext, QueueAdapter
from clipper.services.jobs import create_job
from clipper.services.processing import ClipResult, JobRunner, Processor, Progress
from clipper.services.requeue import BATCH_SIZE, RequeueResult, requeue_jobs
from tests.helpers import wait_for

REQUEST = ClipRequest(SourceType.UPLOAD, 0, 10_000, upload_key="up_1")
KEEP = timedelta(hours=72)
NO_FONTS = "no fonts to burn subtitles with (SUBTITLE_FONTS_DIR)"


async def _no_fonts(job: Job, progress: Progress, context: JobContext) -> ClipResult:
    """A failure of this worker's setup: dead-lettered at once, requeued once it is fixed."""
    raise SubtitleFontsMissingError(NO_FONTS)


async def _cut(job: Job, progress: Progress, context: JobContext) -> ClipResult:
    return ClipResult(f"results/{job.id}/clip.mp4")


def _consume(
    queue: QueueAdapter,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    processor: Processor,
) -> Consumer:
    runner = JobRunner(sessions, {"upload": processor}, KEEP)
    return queue.consume(
        runner,
        on_retry=runner.on_retry,
        on_dead_letter=runner.on_dead_letter,
        transaction=engine.begin,
    )


async def _job(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        job = await JobRepository(session).get(job_id)
    assert job is not None
    return job


async def _dead_lettered(
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    engine: AsyncEngine,
    count: int = 1,
) -> list[uuid.UUID]:
    """Jobs failed by the real worker path (message dead-lettered, dlq record, events), with
    the consumer stopped afterwards so nothing runs them again behind the test's back."""
    job_ids = []
    for _ in range(count):
        async with sessions.begin() as session:
            job_ids.append((await create_job(session, queue, REQUEST, OPERATOR)).job.id)
    consumer = _consume(queue, engine, sessions, _no_fonts)

    async def all_failed() -> bool:
        return all([(await _job(sessions, i)).status == "failed" for i in job_ids])

    await wait_for(all_failed, message="the jobs dead-lettered")
    await consumer.stop()
    return job_ids


async def _requeue(
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    job_ids: list[uuid.UUID] | None,
    limit: int = BATCH_SIZE,
    after: uuid.UUID | None = None,
) -> RequeueResult:
    async with sessions.begin() as session:
        return await requeue_jobs(session, queue, job_ids, limit=limit, after=after)


async def _messages(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> dict[str, tuple[str, int]]:
    """The job's queue messages by queue: (state, attempts)."""
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT queue, state, attempts FROM clipper_queue.messages WHERE job_id = :j"),
            {"j": job_id},
        )
    return {queue: (state, attempts) for queue, state, attempts in rows}


async def _requeued_events(
    sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> list[JobEvent]:
    async with sessions() as session:
        events = await JobRepository(session).events(job_id)
    return [event for event in events if event.type == "requeued"]


async def test_requeue_resets_the_row_its_record_and_its_message_then_the_job_runs(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    (job_id,) = await _dead_lettered(sessions, queue, engine)
    assert await _messages(sessions, job_id) == {"clips": ("failed", 1), "clips.dlq": ("ready", 0)}

    result = await _requeue(sessions, queue, [job_id])

    assert (result.requeued, result.unknown, result.refused) == ([job_id], [], {})
    job = await _job(sessions, job_id)
    assert (job.status, job.attempts, job.progress) == ("queued", 0, 0)
    assert (job.error_code, job.error_message, job.expires_at) == (None, None, None)
    async with sessions() as session:
        assert await session.get(DlqJob, job_id) is None
    assert await _messages(sessions, job_id) == {"clips": ("ready", 0)}  # the letter is gone
    (event,) = await _requeued_events(sessions, job_id)
    assert event.payload == {
        "previous_error": {"code": "SUBTITLE_FONTS_MISSING", "message": NO_FONTS}
    }

    _consume(queue, engine, sessions, _cut)
    await wait_for(lambda: _status_is_done(sessions, job_id), message="the requeued job done")


async def _status_is_done(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> bool:
    return (await _job(sessions, job_id)).status == "done"


async def test_only_failed_jobs_are_requeued_and_unknown_ids_are_named(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    async with sessions.begin() as session:
        done = (await create_job(session, queue, REQUEST, OPERATOR)).job.id
    consumer = _consume(queue, engine, sessions, _cut)
    await wait_for(lambda: _status_is_done(sessions, done), message="a done job")
    await consumer.stop()
    async with sessions.begin() as session:
        queued = (await create_job(session, queue, REQUEST, OPERATOR)).job.id
    unknown = uuid.uuid4()

    result = await _requeue(sessions, queue, [queued, done, unknown])

    assert (result.requeued, result.unknown) == ([], [unknown])
    assert result.refused == {queued: "it is queued, not failed", done: "it is done, not failed"}
    assert ((await _job(sessions, queued)).status, (await _job(sessions, done)).status) == (
        "queued",
        "done",
    )
    assert await _requeued_events(sessions, queued) == []
    assert await _messages(sessions, queued) == {"clips": ("ready", 0)}


async def test_two_concurrent_requeues_of_one_job_requeue_it_once(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    (job_id,) = await _dead_lettered(sessions, queue, engine)
    async with sessions.begin() as first:
        assert (await requeue_jobs(first, queue, [job_id])).requeued == [job_id]
        second = asyncio.create_task(_requeue(sessions, queue, [job_id]))
        # The second waits on the first's row lock; it reads the row only once that commits.
        await wait_for(lambda: _lock_waiters(sessions), message="the second requeue waiting")
    late = await second

    assert (late.requeued, late.refused) == ([], {job_id: "it is queued, not failed"})
    assert len(await _requeued_events(sessions, job_id)) == 1
    assert await _messages(sessions, job_id) == {"clips": ("ready", 0)}


async def _lock_waiters(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
            )
        )
    return bool(waiting)


async def test_every_dead_lettered_job_is_requeued_in_batches(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    job_ids = sorted(await _dead_lettered(sessions, queue, engine, count=3))
    async with sessions.begin() as session:  # a queued job is not dead-lettered: left alone
        bystander = (await create_job(session, queue, REQUEST, OPERATOR)).job.id

    first = await _requeue(sessions, queue, None, limit=2)
    rest = await _requeue(sessions, queue, None, limit=2, after=first.cursor)
    # A short batch is not taken for the last (rows a concurrent requeue took drop out of a
    # batch): only an empty one ends it.
    last = await _requeue(sessions, queue, None, limit=2, after=rest.cursor)

    assert (first.requeued, first.cursor) == (job_ids[:2], job_ids[1])
    assert (rest.requeued, rest.cursor) == (job_ids[2:], job_ids[2])
    assert (last.requeued, last.cursor) == ([], None)
    async with sessions() as session:
        statuses = dict(
            (await session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))).all()
        )
        records = await session.scalar(select(func.count()).select_from(DlqJob))
    assert set(statuses.values()) == {"queued"}
    assert records == 0
    assert await _requeued_events(sessions, bystander) == []


async def test_named_jobs_are_requeued_in_batches_with_unknown_ids_named(
    sessions: async_sessionmaker[AsyncSession], queue: QueueAdapter, engine: AsyncEngine
) -> None:
    failed = await _dead_lettered(sessions, queue, engine, count=2)
    named = sorted([*failed, uuid.uuid4()])

    first = await _requeue(sessions, queue, [*named, named[0]], limit=2)  # a repeat is one
    rest = await _requeue(sessions, queue, named, limit=2, after=first.cursor)

    assert first.cursor == named[1]
    assert rest.cursor is None
    assert sorted(first.requeued + rest.requeued) == sorted(failed)
    assert first.unknown + rest.unknown == [i for i in named if i not in failed]
