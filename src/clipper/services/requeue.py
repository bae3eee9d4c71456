"""Requeueing failed jobs: the one path for the HTTP requeue and `clipper dlq requeue`.

A requeue changes three things that must agree, so they change in the caller's one
transaction: the job row (failed -> queued), its dead-letter record, and its queue message
(run again with fresh attempts, its letter gone from `<queue>.dlq`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import Job
from ..db.repositories import JobRepository
from ..domain.jobs import JobStatus, sources_of
from ..queue import QueueAdapter
from .jobs import queue_message

# Jobs per transaction when a caller walks through many (`clipper dlq requeue --all`).
BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class RequeueResult:
    requeued: list[uuid.UUID]
    unknown: list[uuid.UUID]  # named ids with no job
    refused: dict[uuid.UUID, str]  # jobs left as they were, with why (e.g. not failed)
    # Where the next batch starts (pass it back as `after`); None when this was the last.
    cursor: uuid.UUID | None

    @property
    def handled(self) -> int:
        return len(self.requeued) + len(self.unknown) + len(self.refused)

    def followed_by(self, later: RequeueResult) -> RequeueResult:
        """This result and the next batch's together, for a caller walking many batches."""
        return RequeueResult(
            [*self.requeued, *later.requeued],
            [*self.unknown, *later.unknown],
            self.refused | later.refused,
            later.cursor,
        )


@dataclass(frozen=True, slots=True)
class _Batch:
    jobs: Sequence[Job]  # locked
    named: list[uuid.UUID]  # the ids asked for in this batch (none for "every job")
    cursor: uuid.UUID | None


async def requeue_jobs(
    session: AsyncSession,
    queue: QueueAdapter,
    job_ids: Sequence[uuid.UUID] | None,
    *,
    limit: int = BATCH_SIZE,
    after: uuid.UUID | None = None,
    reason: str | None = None,
) -> RequeueResult:
    """Requeue one batch, in the caller's transaction (the caller commits): up to `limit` of
    the named jobs, or with `job_ids` None of every failed job with a dead-letter record, in
    id order from after `after` (only those whose record has `reason` when given). Call
    again with the result's cursor until it is None.

    The jobs are locked first, so of two concurrent requeues of one job one requeues it and
    the other finds it queued."""
    jobs = JobRepository(session)
    batch = await _lock_batch(jobs, job_ids, limit, after, reason)
    requeued: list[uuid.UUID] = []
    refused: dict[uuid.UUID, str] = {}
    for job in batch.jobs:
        refusal = await _requeue(session, queue, jobs, job)
        if refusal is None:
            requeued.append(job.id)
        else:
            refused[job.id] = refusal
    found = {job.id for job in batch.jobs}
    unknown = [job_id for job_id in batch.named if job_id not in found]
    return RequeueResult(requeued, unknown, refused, batch.cursor)


async def requeue_in_batches(
    sessions: async_sessionmaker[AsyncSession],
    queue: QueueAdapter,
    job_ids: Sequence[uuid.UUID] | None,
    *,
    reason: str | None = None,
    on_batch: Callable[[RequeueResult], None] | None = None,
) -> RequeueResult:
    """`requeue_jobs` batch after batch, each committed on its own (so requeueing thousands
    never holds one long transaction with thousands of locks), until none is left; what
    they did, together."""
    total = RequeueResult([], [], {}, None)
    while True:
        async with sessions.begin() as session:
            batch = await requeue_jobs(session, queue, job_ids, after=total.cursor, reason=reason)
        total = total.followed_by(batch)
        if on_batch is not None:
            on_batch(batch)
        if total.cursor is None:
            return total


async def _lock_batch(
    jobs: JobRepository,
    job_ids: Sequence[uuid.UUID] | None,
    limit: int,
    after: uuid.UUID | None,
    reason: str | None,
) -> _Batch:
    if job_ids is None:
        found = await jobs.lock_dead_lettered(after, limit, reason)
        # A short batch is not the last: rows another requeue took meanwhile drop out of it
        # (the lock re-checks them). Only an empty one says nothing is left.
        return _Batch(found, [], found[-1].id if found else None)
    pending = sorted({job_id for job_id in job_ids if after is None or job_id > after})
    named = pending[:limit]
    return _Batch(await jobs.lock(named), named, named[-1] if len(pending) > limit else None)


async def _requeue(
    session: AsyncSession, queue: QueueAdapter, jobs: JobRepository, job: Job
) -> str | None:
    """Requeue one locked job; why not, when it cannot be (nothing changed then)."""
    if JobStatus(job.status) not in sources_of(JobStatus.QUEUED):
        return f"it is {job.status}, not failed"
    # The message first: when it refuses, the job row has not been touched yet.
    if not await queue.requeue(queue_message(job), conn=session):
        return "its queue message is still queued or running"
    await jobs.requeue(job)
    return None
