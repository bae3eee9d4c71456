"""Jobs: creating one (the row, its `created` event and its queue message in ONE
transaction), and reading them. Each runs in the caller's session; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Job, JobEvent

# JobFilter re-exported: the API names the filter it passes to list_jobs.
from ..db.repositories import JobFilter as JobFilter
from ..db.repositories import JobRepository, NewJob
from ..domain.clips import ClipRequest
from ..domain.jobs import Priority
from ..domain.tenancy import Scope
from ..errors import GoneError, NotFoundError
from ..queue import QueueAdapter, QueueMessage


class IdempotencyConflictError(Exception):
    """The Idempotency-Key was first used with a different request."""


@dataclass(frozen=True, slots=True)
class CreatedJob:
    job: Job
    # False when an earlier request with the same Idempotency-Key already made the job.
    created: bool


async def create_job(
    session: AsyncSession,
    queue: QueueAdapter,
    request: ClipRequest,
    scope: Scope,
    idempotency_key: str | None = None,
) -> CreatedJob:
    """Insert the job (owned by the scope's tenant) and its `created` event and publish it,
    inside the caller's transaction (the caller commits: a failure anywhere leaves nothing
    behind). Concurrent requests of one tenant with one Idempotency-Key make one job; the
    others get it back. Idempotency-Keys are per tenant."""
    jobs = JobRepository(session)
    tenant = scope.tenant
    fingerprint = request.fingerprint() if idempotency_key else None
    if idempotency_key and (earlier := await jobs.get_by_idempotency_key(tenant, idempotency_key)):
        return _replay(earlier, fingerprint)
    job = await jobs.add(new_job(request, tenant, idempotency_key, fingerprint))
    if job is None:  # a concurrent request with the same key committed first
        assert idempotency_key is not None
        winner = await jobs.get_by_idempotency_key(tenant, idempotency_key)
        assert winner is not None, "ON CONFLICT skipped the insert, so the key's row exists"
        return _replay(winner, fingerprint)
    await queue.publish(queue_message(job), conn=session)
    return CreatedJob(job, created=True)


def new_job(
    request: ClipRequest,
    tenant: str,
    idempotency_key: str | None,
    fingerprint: str | None,
    batch_id: uuid.UUID | None = None,
) -> NewJob:
    """The row of a new job for `request`, owned by `tenant`."""
    return NewJob(
        id=uuid.uuid4(),
        tenant_id=tenant,
        priority=request.priority.value,
        source_type=request.source_type.value,
        start_ms=request.start_ms,
        end_ms=request.end_ms,
        upload_key=request.upload_key,
        source_url=request.source_url,
        with_subtitles=request.with_subtitles,
        burn_subtitles=request.burn_subtitles,
        subtitle_lang=request.subtitle_lang,
        subtitles_upload_key=request.subtitles_upload_key,
        callback_url=request.callback_url,
        cut_mode=request.cut.value,
        output=request.output.to_json(),
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        batch_id=batch_id,
    )


def queue_message(job: Job) -> QueueMessage:
    """The job's message: its id, its priority as the queue's number, and its tenant as the
    queue's group, so tenants take turns within a priority (one tenant's backlog cannot
    starve another's jobs)."""
    return QueueMessage(job.id, Priority(job.priority).rank, group=job.tenant_id)


def _replay(job: Job, fingerprint: str | None) -> CreatedJob:
    if job.request_fingerprint != fingerprint:
        raise IdempotencyConflictError("this Idempotency-Key was used with a different request")
    return CreatedJob(job, created=False)


async def get_job(session: AsyncSession, job_id: uuid.UUID, scope: Scope) -> Job | None:
    return await JobRepository(session).get(job_id, scope.only_tenant)


async def live_job(session: AsyncSession, job_id: uuid.UUID, scope: Scope) -> Job:
    """The job, unless it is unknown or another tenant's (NotFoundError, alike) or expired
    (GoneError)."""
    jobs = JobRepository(session)
    job = await jobs.get(job_id, scope.only_tenant)
    if job is None:
        raise NotFoundError()
    if await jobs.is_expired(job):
        raise GoneError()
    return job


async def job_events(session: AsyncSession, job_id: uuid.UUID, scope: Scope) -> Sequence[JobEvent]:
    """Everything that happened to a live job (see `live_job`), oldest first."""
    await live_job(session, job_id, scope)
    return await JobRepository(session).events(job_id)


@dataclass(frozen=True, slots=True)
class JobList:
    jobs: Sequence[Job]
    # Another page follows: it starts after the last of `jobs`.
    more: bool


async def list_jobs(
    session: AsyncSession,
    scope: Scope,
    filters: JobFilter,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> JobList:
    """Up to `limit` of the scope's jobs matching `filters`, newest first, from after
    `after` (the created_at and id of the previous page's last job). A filter naming another
    tenant than a one-tenant scope's own finds nothing: the scope always holds."""
    # One more than asked: is there another page?
    found = await JobRepository(session).page(scope.only_tenant, filters, after, limit + 1)
    return JobList(found[:limit], more=len(found) > limit)
