"""Running a job: the worker's queue handler, from claim to done, retry or dead letter."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import psycopg
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JobRepository
from ..domain.jobs import JobStatus
from ..domain.subtitles import SubtitlesMade
from ..errors import StorageFullError, is_disk_full
from ..queue import (
    DeadLetter,
    JobContext,
    LeaseLostError,
    QueueAdapter,
    ReceivedMessage,
    RetryNotice,
    SystemicError,
    bounded,
)
from ..storage import Storage
from .failures import NoProcessorError, UserFailure, classify_failure
from .webhooks import enqueue_job_webhook

logger = logging.getLogger("clipper.worker")

# Progress is written when it rose by a point, or after this long if anything changed.
PROGRESS_INTERVAL_SECONDS = 0.5
# ...and the live streams are told (NOTIFY) of a new stage at once, of progress only when it
# rose this much or this long after the last they were told of: each NOTIFY costs every
# committing transaction of the database a little (db/repositories.py, add_event).
NOTIFY_PERCENT_STEP = 5
NOTIFY_INTERVAL_SECONDS = 1.0

T = TypeVar("T")

# The database is unreachable (or hangs): a cause outside the job, not worth its attempts.
_DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True, slots=True)
class ClipResult:
    video_key: str
    subtitles_key: str | None = None
    # Where in the source the clip starts (None: the processor does not say).
    start_ms: int | None = None
    # The images asked with the clip (output.thumbnail, output.preview), when asked.
    thumbnail_key: str | None = None
    preview_key: str | None = None
    # Where the subtitles came from (with_subtitles jobs).
    subtitles: SubtitlesMade | None = None


class Progress(Protocol):
    async def __call__(self, percent: int, stage: str) -> None: ...


Processor = Callable[[Job, Progress, JobContext], Awaitable[ClipResult]]


class ProgressReporter:
    """Writes progress and a `progress` event, debounced, each in a short transaction of a
    writer task of its own: the processor never waits on the database, so a hung connection
    cannot stall FFmpeg's progress pipe (or delay stopping it). Writes are fenced by the
    attempt: a stale attempt's progress changes nothing."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        job_id: uuid.UUID,
        attempt: int,
        deadline_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._attempt = attempt
        self._deadline = deadline_seconds
        self._percent = -1
        self._stage = ""
        self._reported_at = 0.0
        self._notified = (-NOTIFY_PERCENT_STEP, "", 0.0)  # percent, stage, when
        self._pending: collections.deque[tuple[int, str, bool]] = collections.deque()
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, percent: int, stage: str) -> None:
        percent = max(0, min(100, percent))
        changed = percent != self._percent or stage != self._stage
        due = time.monotonic() - self._reported_at >= PROGRESS_INTERVAL_SECONDS
        if not (percent >= self._percent + 1 or (changed and due)):
            return
        now = time.monotonic()
        self._percent, self._stage, self._reported_at = percent, stage, now
        last_percent, last_stage, last_at = self._notified
        notify = (
            stage != last_stage
            or percent >= last_percent + NOTIFY_PERCENT_STEP
            or percent == 100
            or now - last_at >= NOTIFY_INTERVAL_SECONDS
        )
        if notify:
            self._notified = (percent, stage, now)
        self._pending.append((percent, stage, notify))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self._pending:
            percent, stage, notify = self._pending.popleft()
            try:
                await bounded(self._write(percent, stage, notify), self._deadline)
            except Exception as exc:  # progress is a hint: the job goes on without it
                logger.warning("progress not recorded: %s", type(exc).__name__)

    async def _write(self, percent: int, stage: str, notify: bool) -> None:
        async with self._sessions.begin() as session:
            await JobRepository(session).record_progress(
                self._job_id, self._attempt, percent, stage, notify=notify
            )

    async def flush(self) -> None:
        """Wait (within the deadline) until what was reported is written, so the events stay
        in order before the job's final transition."""
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await bounded(asyncio.shield(self._writer), self._deadline)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()

    async def finish(self) -> None:
        await self.flush()
        self.close()


class JobRunner:
    """The worker's handler: one call per delivered message (at least once per job)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        processors: Mapping[str, Processor],
        keep_results_for: timedelta,
        registry: CollectorRegistry | None = None,
        *,
        storage: Storage | None = None,
        deadline_seconds: float = 15.0,
        queue: QueueAdapter | None = None,
    ) -> None:
        """`storage`: where a stale attempt's result files are deleted (None: left behind);
        `deadline_seconds`: the longest wait on the database for one of the runner's writes
        (the statement deadline, shorter than the visibility window); `queue`: where the
        webhooks of the jobs it ends are published (None: none are)."""
        self._sessions = sessions
        self._processors = processors
        self._keep_results_for = keep_results_for
        self._storage = storage
        self._deadline = deadline_seconds
        self._queue = queue
        self.missing_jobs = Counter(
            "clipper_worker_missing_jobs",
            "Messages acknowledged because their job row does not exist.",
            registry=registry or CollectorRegistry(),
        )

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        job = await self._database(self._start(message, context))
        if job is None:
            return  # acknowledged: nothing (more) to do for this message
        try:
            result = await self._process(job, context)
        except UserFailure as failure:
            await self._database(self._refuse(job, failure, context))
            return
        try:
            await self._database(self._finish(job, result, context))
        except LeaseLostError:
            await self._discard(result)  # the attempt that took over made its own files
            raise

    async def _process(self, job: Job, context: JobContext) -> ClipResult:
        """Run the job's processor, handing a failure on as it must be seen: systemic when
        the disk is full; the user's or permanent when its code says so (failures.py)."""
        try:
            return await self._run_processor(job, context)
        except Exception as exc:
            if _disk_full(exc):
                raise SystemicError("the storage is full", code=StorageFullError.code) from exc
            if (classified := classify_failure(exc)) is not None:
                raise classified from exc
            raise

    async def _run_processor(self, job: Job, context: JobContext) -> ClipResult:
        processor = self._processors.get(job.source_type)
        if processor is None:
            raise NoProcessorError(f"this worker has no processor for {job.source_type} sources")
        reporter = ProgressReporter(self._sessions, job.id, context.attempt, self._deadline)
        try:
            result = await processor(job, reporter, context)
        except asyncio.CancelledError:
            reporter.close()  # a stopped attempt waits for nothing
            raise
        except Exception:
            await reporter.finish()  # its progress belongs before the failure's events
            raise
        await reporter.finish()
        return result

    async def _finish(self, job: Job, result: ClipResult, context: JobContext) -> None:
        """Done, with its results, in ONE transaction with the fenced acknowledgement of this
        attempt: if another worker took the job over, nothing here commits."""
        async with self._sessions.begin() as session:
            await context.complete(session)  # raises LeaseLostError: rolls all of it back
            moved = await JobRepository(session).complete(
                job.id,
                context.attempt,
                result.video_key,
                result.subtitles_key,
                self._keep_results_for,
                actual_start_ms=result.start_ms,
                result_thumbnail_key=result.thumbnail_key,
                result_preview_key=result.preview_key,
                subtitles=result.subtitles,
            )
            if moved:
                await self._announce_end(session, job.id)
            else:
                logger.warning("the job was no longer processing for this attempt")
        logger.info("job done", extra={"attempt": context.attempt, "video": result.video_key})

    async def _refuse(self, job: Job, failure: UserFailure, context: JobContext) -> None:
        """Failed with the user's code, in ONE transaction with the fenced acknowledgement of
        this attempt: no retry, no dead letter, no alert (the request is at fault, not the
        system). If another worker took the job over, nothing here commits."""
        async with self._sessions.begin() as session:
            await context.complete(session)  # raises LeaseLostError: rolls all of it back
            jobs = JobRepository(session)
            current = await jobs.get(job.id)  # as it is now: a cancel may have ended it
            failed = current is not None and await jobs.fail(
                current, failure.code, str(failure), self._keep_results_for
            )
            if failed:
                await self._announce_end(session, job.id)
        logger.info(
            "job failed: %s: %s",
            failure.code,
            failure,
            extra={"attempt": context.attempt, "code": failure.code},
        )

    async def _discard(self, result: ClipResult) -> None:
        if self._storage is None:
            return
        for key in (
            result.video_key,
            result.subtitles_key,
            result.thumbnail_key,
            result.preview_key,
        ):
            if key is not None:
                await self._storage.delete(key)

    async def _database(self, work: Coroutine[Any, Any, T]) -> T:
        """One of the runner's own transactions, within the deadline. An unreachable or
        hanging database is systemic: the attempt is given back uncharged."""
        try:
            return await bounded(work, self._deadline)
        except _DATABASE_DOWN as exc:
            raise SystemicError("the database is unreachable", code="DATABASE_UNAVAILABLE") from exc

    async def _start(self, message: ReceivedMessage, context: JobContext) -> Job | None:
        async with self._sessions.begin() as session:
            jobs = JobRepository(session)
            job = await jobs.get(message.job_id)
            if job is None:
                self.missing_jobs.inc()
                logger.warning("no job row for this message; acknowledging it")
                return None
            if JobStatus(job.status).terminal:
                return None  # a redelivery of a finished job: idempotent
            started = await jobs.start_attempt(job.id, context.attempt)
        if started is not None:  # the log line carries the job id (current_job_id)
            logger.info(
                "attempt %d of %d started",
                context.attempt,
                context.max_attempts,
                extra={"attempt": context.attempt},
            )
        return started

    async def on_retry(self, notice: RetryNotice, conn: AsyncConnection) -> None:
        """Runs in the queue's retry transaction."""
        async with AsyncSession(bind=conn) as session:
            error = f"{notice.error.type}: {notice.error.message}"
            await JobRepository(session).record_retry(
                notice.job_id, notice.attempt, error, notice.run_after
            )

    async def on_dead_letter(self, letter: DeadLetter, conn: AsyncConnection) -> None:
        """Runs in the queue's dead-letter transaction: the job fails with it, or neither."""
        async with AsyncSession(bind=conn) as session:
            jobs = JobRepository(session)
            job = await jobs.get(letter.job_id)
            if job is None:
                return
            code = letter.error.code or "PROCESSING_FAILED"
            failed = await jobs.fail(
                job,
                code,
                letter.error.message,
                self._keep_results_for,
                dead_letter=_dead_letter_record(job, letter),
            )
            if failed:
                await self._announce_end(session, job.id)

    async def _announce_end(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        """The webhook of a job that just ended, in the transaction that ended it."""
        if self._queue is None:
            return
        ended = await JobRepository(session).get(job_id)  # as it ended, not as it was loaded
        assert ended is not None, "the job was just updated in this transaction"
        await enqueue_job_webhook(session, self._queue, ended)


def _dead_letter_record(job: Job, letter: DeadLetter) -> dict[str, Any]:
    return {
        "request": {
            "sourceType": job.source_type,
            "uploadKey": job.upload_key,
            "sourceUrl": job.source_url,
            "startMs": job.start_ms,
            "endMs": job.end_ms,
            "priority": job.priority,
        },
        "attempts": letter.attempts,
        "error": letter.error.as_json(),
    }


def _disk_full(exc: BaseException) -> bool:
    """Out of space on DATA_DIR or scratch, wherever in the chain of causes it was raised."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StorageFullError) or is_disk_full(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
