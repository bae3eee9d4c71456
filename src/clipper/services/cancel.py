"""Cancelling a job: POST /api/jobs/{id}/cancel and `clipper jobs cancel`."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Job
from ..db.repositories import JobRepository
from ..domain.jobs import JobStatus
from ..domain.tenancy import Scope
from ..errors import InvalidStateError, NotFoundError
from ..queue import QueueAdapter
from .webhooks import enqueue_job_webhook


async def cancel_job(
    session: AsyncSession,
    queue: QueueAdapter,
    job_id: uuid.UUID,
    scope: Scope,
    keep_for: timedelta,
) -> Job:
    """Cancel a queued or processing job, in the caller's transaction: the job ends
    `cancelled` (with a `cancelled` event and its webhook, when it has a callback URL) and
    its message is cancelled with it, so a
    queued job never runs and a running one has its handler (FFmpeg, a fetch) stopped by its
    worker as soon as this commits. The job's row is locked first, so a worker finishing it
    at the same moment either commits `done` before (then this is a 409) or finds it
    cancelled (then its completion changes nothing). Cancelling a cancelled job again is
    harmless; a done or failed one is an InvalidStateError naming its status."""
    jobs = JobRepository(session)
    job = await jobs.lock_one(job_id, scope.only_tenant)
    if job is None:
        raise NotFoundError()
    status = JobStatus(job.status)
    if status is JobStatus.CANCELLED:
        return job
    if status.terminal:
        raise InvalidStateError(
            f"the job is {status}: only a queued or processing job can be cancelled"
        )
    await jobs.cancel(job, keep_for)
    await queue.cancel(job.id, conn=session)
    cancelled = await jobs.get(job.id)
    assert cancelled is not None
    await enqueue_job_webhook(session, queue, cancelled)
    return cancelled
