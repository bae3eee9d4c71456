"""Running a job: the worker's queue handler, from claim to done, retry or dead letter."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JobRepository
from ..domain.jobs import JobStatus
from ..queue import DeadLetter, JobContext, PermanentError, ReceivedMessage, RetryNotice

logger = logging.getLogger("clipper.worker")

# Progress is written when it rose by a point, or after this long if anything changed.
PROGRESS_INTERVAL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class ClipResult:
    video_key: str
    subtitles_key: str | None = None


class Progress(Protocol):
    async def __call__(self, percent: int, stage: str) -> None: ...


Processor = Callable[[Job, Progress, JobContext], Awaitable[ClipResult]]


class NoProcessorError(PermanentError):
    code = "NO_PROCESSOR"


class ProgressReporter:
    """Writes progress and a `progress` event, debounced, each in a short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._percent = -1
        self._stage = ""
        self._written_at = 0.0

    async def __call__(self, percent: int, stage: str) -> None:
        percent = max(0, min(100, percent))
        changed = percent != self._percent or stage != self._stage
        due = time.monotonic() - self._written_at >= PROGRESS_INTERVAL_SECONDS
        if not (percent >= self._percent + 1 or (changed and due)):
            return
        async with self._sessions.begin() as session:
            await JobRepository(session).record_progress(self._job_id, percent, stage)
        self._percent, self._stage, self._written_at = percent, stage, time.monotonic()


class JobRunner:
    """The worker's handler: one call per delivered message (at least once per job)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        processors: Mapping[str, Processor],
        keep_results_for: timedelta,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._sessions = sessions
        self._processors = processors
        self._keep_results_for = keep_results_for
        self.missing_jobs = Counter(
            "clipper_worker_missing_jobs",
            "Messages acknowledged because their job row does not exist.",
            registry=registry or CollectorRegistry(),
        )

    async def __call__(self, message: ReceivedMessage, context: JobContext) -> None:
        job = await self._start(message, context)
        if job is None:
            return  # acknowledged: nothing (more) to do for this message
        processor = self._processors.get(job.source_type)
        if processor is None:
            raise NoProcessorError(f"this worker has no processor for {job.source_type} sources")
        result = await processor(job, ProgressReporter(self._sessions, job.id), context)
        async with self._sessions.begin() as session:
            await JobRepository(session).complete(
                job, result.video_key, result.subtitles_key, self._keep_results_for
            )

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
            return await jobs.start_attempt(job.id, context.attempt)

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
            await jobs.fail(
                job,
                code,
                letter.error.message,
                _dead_letter_record(job, letter),
                self._keep_results_for,
            )


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
