"""Batches: several clips of one source in one request, each an ordinary job that carries the
batch's id. All of them, their `created` events and their queue messages are written in ONE
transaction (the caller's): a failure anywhere leaves none behind. The jobs of a URL-source
batch share one fetch of the media (see `media_lock_name` and clipping.UrlSource)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Job
from ..db.repositories import JobRepository
from ..domain.clips import ClipRequest
from ..domain.tenancy import Scope
from ..queue import QueueAdapter
from .jobs import IdempotencyConflictError, new_job, queue_message


@dataclass(frozen=True, slots=True)
class CreatedBatch:
    batch_id: uuid.UUID
    # In the order of the requests.
    jobs: Sequence[Job]
    # False when an earlier request with the same Idempotency-Key already made the batch.
    created: bool


def job_idempotency_keys(idempotency_key: str, count: int) -> list[str]:
    """A batch's Idempotency-Key K is kept on its jobs as `K#0`, `K#1`, … in clip order: each
    job stays an ordinary one under the per-tenant keys of single jobs, and a replay finds
    the jobs in their order. (A single job's own key `K#0` therefore conflicts with batch K.)"""
    return [f"{idempotency_key}#{index}" for index in range(count)]


def media_lock_name(batch_id: uuid.UUID) -> str:
    """The advisory lock over a batch's fetched media: held while a worker fetches it or looks
    whether it is there, and while retention deletes it, so neither races the other."""
    return f"clipper.batch-media:{batch_id}"


async def create_batch(
    session: AsyncSession,
    queue: QueueAdapter,
    requests: Sequence[ClipRequest],
    scope: Scope,
    idempotency_key: str | None = None,
) -> CreatedBatch:
    """Insert one job per request (owned by the scope's tenant, all with one new batch id) and
    their `created` events, and publish them with one `publish_many`, inside the caller's
    transaction (the caller commits). With an Idempotency-Key, the same batch again returns
    its jobs, also for concurrent requests; another batch with that key is a conflict."""
    jobs = JobRepository(session)
    tenant = scope.tenant
    keys = job_idempotency_keys(idempotency_key, len(requests)) if idempotency_key else None
    fingerprint = _fingerprint(requests) if keys else None
    batch_id = uuid.uuid4()
    made: list[Job] = []
    for index, request in enumerate(requests):
        key = keys[index] if keys else None
        job = await jobs.add(new_job(request, tenant, key, fingerprint, batch_id))
        if job is None:  # its key is taken, by an earlier request or a concurrent one
            assert keys is not None, "only an Idempotency-Key can be taken"
            return await _replay(jobs, tenant, keys, fingerprint)
        made.append(job)
    await queue.publish_many([queue_message(job) for job in made], conn=session)
    return CreatedBatch(batch_id, made, created=True)


def _fingerprint(requests: Sequence[ClipRequest]) -> str:
    """Of the whole batch, stored on each of its jobs: a replay with any clip changed, added
    or left out is a conflict."""
    return hashlib.sha256(" ".join(r.fingerprint() for r in requests).encode()).hexdigest()


async def _replay(
    jobs: JobRepository, tenant: str, keys: Sequence[str], fingerprint: str | None
) -> CreatedBatch:
    """The batch these keys made earlier, if it is this one; else a conflict (another batch,
    or another job holding one of the keys, beside any this transaction inserted)."""
    earlier = await jobs.get_by_idempotency_keys(tenant, keys)
    assert earlier, "ON CONFLICT skipped the insert, so the key's row exists"
    batch_id = earlier[0].batch_id
    expected = (batch_id, fingerprint)
    same = all((job.batch_id, job.request_fingerprint) == expected for job in earlier)
    if batch_id is None or len(earlier) != len(keys) or not same:
        raise IdempotencyConflictError("this Idempotency-Key was used with a different batch")
    return CreatedBatch(batch_id, earlier, created=False)
