"""/api/dlq (admin): failed jobs and their dead-letter records; requeue one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from ...db.repositories import JobRepository
from ...domain.jobs import InvalidTransitionError
from ...errors import InvalidStateError, NotFoundError
from ...services.jobs import requeue_job
from ..deps import ResourcesDep, get_admin
from ..schemas import DeadLetterRead, JobRead

router = APIRouter(prefix="/api/dlq", tags=["admin"], dependencies=[Depends(get_admin)])


@router.get("", response_model=list[DeadLetterRead])
async def dead_letters(
    resources: ResourcesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeadLetterRead]:
    """Failed jobs' dead-letter records, newest first: the request, attempts, last error."""
    async with resources.sessions() as session:
        records = await JobRepository(session).dead_letters(limit)
    return [
        DeadLetterRead(job_id=r.job_id, reason=r.reason, payload=r.payload, created_at=r.created_at)
        for r in records
    ]


@router.post("/{job_id}/requeue", status_code=status.HTTP_202_ACCEPTED, response_model=JobRead)
async def requeue(job_id: uuid.UUID, resources: ResourcesDep) -> JobRead:
    """Put a failed job back on the queue with fresh attempts (one transaction)."""
    async with resources.sessions.begin() as session:
        jobs = JobRepository(session)
        job = await jobs.get(job_id)
        if job is None:
            raise NotFoundError()
        try:
            await requeue_job(session, resources.queue, job)
        except InvalidTransitionError as exc:
            raise InvalidStateError(f"only a failed job can be requeued ({exc})") from exc
        requeued = await jobs.get(job_id)
    assert requeued is not None
    return JobRead.of(requeued)
