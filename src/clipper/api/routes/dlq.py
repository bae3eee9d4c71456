"""/api/dlq (admin): failed jobs and their dead-letter records; requeue one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from ...domain.tenancy import OPERATOR
from ...errors import ForbiddenError, InvalidStateError, NotFoundError, ValidationFailedError
from ...services.dead_letters import list_dead_letters
from ...services.jobs import get_job
from ...services.requeue import requeue_jobs
from ..deps import ResourcesDep, get_admin
from ..openapi import KEYED, error_responses
from ..schemas import DeadLetterRead, JobRead

router = APIRouter(prefix="/api/dlq", tags=["admin"], dependencies=[Depends(get_admin)])

ADMIN = (*KEYED, ForbiddenError, ValidationFailedError)


@router.get("", response_model=list[DeadLetterRead], responses=error_responses(*ADMIN))
async def dead_letters(
    resources: ResourcesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeadLetterRead]:
    """Failed jobs' dead-letter records, newest first: the request, attempts, last error."""
    async with resources.sessions() as session:
        records = await list_dead_letters(session, limit)
    return [
        DeadLetterRead(job_id=r.job_id, reason=r.reason, payload=r.payload, created_at=r.created_at)
        for r in records
    ]


@router.post(
    "/{job_id}/requeue",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobRead,
    responses=error_responses(*ADMIN, NotFoundError, InvalidStateError),
)
async def requeue(job_id: uuid.UUID, resources: ResourcesDep) -> JobRead:
    """Put a failed job back on the queue with fresh attempts (one transaction)."""
    async with resources.sessions.begin() as session:
        result = await requeue_jobs(session, resources.queue, [job_id])
        if result.unknown:
            raise NotFoundError()
        if refusal := result.refused.get(job_id):
            raise InvalidStateError(f"this job cannot be requeued: {refusal}")
        requeued = await get_job(session, job_id, OPERATOR)
    assert requeued is not None
    return JobRead.of(requeued)
