"""/api/dlq (admin): failed jobs and their dead-letter records, grouped by error code;
requeue or discard one, a code's or all."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Depends, Query, status
from pydantic import StrictBool, model_validator

from ...domain.tenancy import OPERATOR
from ...errors import (
    ForbiddenError,
    InvalidStateError,
    NotFoundError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from ...services.dead_letters import (
    DeadLetterDetail,
    DeadLetterGroup,
    dead_letter_groups,
    dead_letter_of,
    discard_dead_letters,
    list_dead_letters,
)
from ...services.jobs import get_job
from ...services.requeue import requeue_in_batches, requeue_jobs
from ..deps import ResourcesDep, get_admin, json_body
from ..openapi import KEYED, error_responses
from ..schemas import DeadLetterRead, JobRead, Wire

router = APIRouter(prefix="/api/dlq", tags=["admin"], dependencies=[Depends(get_admin)])

ADMIN = (*KEYED, ForbiddenError, ValidationFailedError)
# The routes that act on a selection of dead letters (a JSON body).
SELECTING = (*ADMIN, UnsupportedMediaTypeError)


class DeadLetterSample(Wire):
    job_id: uuid.UUID
    message: str
    created_at: datetime


class DeadLetterGroupRead(Wire):
    code: str
    count: int
    # The group's newest dead letter.
    sample: DeadLetterSample

    @classmethod
    def of(cls, group: DeadLetterGroup) -> DeadLetterGroupRead:
        sample = group.sample
        return cls(
            code=group.code,
            count=group.count,
            sample=DeadLetterSample(
                job_id=sample.job_id, message=sample.message, created_at=sample.failed_at
            ),
        )


class DeadLetterError(Wire):
    # The exception's type, and its traceback's tail (the last few kB) as the worker saw it.
    type: str
    code: str
    message: str
    traceback: str


class DeadLetterDetailRead(Wire):
    """One job's dead-letter record: why (the error code), after how many attempts, and the
    last error with its traceback."""

    job_id: uuid.UUID
    reason: str
    attempts: int
    error: DeadLetterError
    created_at: datetime

    @classmethod
    def of(cls, letter: DeadLetterDetail) -> DeadLetterDetailRead:
        return cls(
            job_id=letter.job_id,
            reason=letter.reason,
            attempts=letter.attempts,
            error=DeadLetterError(
                type=letter.error_type,
                code=letter.error_code,
                message=letter.message,
                traceback=letter.traceback,
            ),
            created_at=letter.failed_at,
        )


class DeadLetterSelection(Wire, extra="forbid"):
    """Which dead letters: those of one error `code`, or `all`; exactly one of the two."""

    code: str | None = None
    all: StrictBool = False

    @model_validator(mode="after")
    def one_choice(self) -> Self:
        if (self.code is None) == (not self.all):
            raise ValueError('give {"code": "..."} or {"all": true}, not both or neither')
        return self


class Requeued(Wire):
    requeued: int


class Discarded(Wire):
    discarded: int


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


@router.get("/groups", response_model=list[DeadLetterGroupRead], responses=error_responses(*ADMIN))
async def groups(resources: ResourcesDep) -> list[DeadLetterGroupRead]:
    """The dead letters by error code, largest group first, each with its newest as a
    sample."""
    async with resources.sessions() as session:
        return [DeadLetterGroupRead.of(group) for group in await dead_letter_groups(session)]


@router.post(
    "/requeue",
    response_model=Requeued,
    responses=error_responses(*SELECTING),
    dependencies=[Depends(json_body)],
)
async def requeue_many(body: DeadLetterSelection, resources: ResourcesDep) -> Requeued:
    """Requeue every dead letter of one error code, or all of them, with fresh attempts:
    in batches, each its own transaction; answers how many were requeued."""
    result = await requeue_in_batches(resources.sessions, resources.queue, None, reason=body.code)
    return Requeued(requeued=len(result.requeued))


@router.post(
    "/{job_id}/discard",
    response_model=Discarded,
    responses=error_responses(*ADMIN, NotFoundError),
)
async def discard_one(job_id: uuid.UUID, resources: ResourcesDep) -> Discarded:
    """Forget one job's dead-letter record (404 without one); the job stays failed."""
    async with resources.sessions.begin() as session:
        discarded = await discard_dead_letters(session, job_id=job_id)
    if not discarded:
        raise NotFoundError("this job has no dead letter")
    resources.changes.wake(None)  # no job event: the overview streams are told here
    return Discarded(discarded=discarded)


@router.post(
    "/discard",
    response_model=Discarded,
    responses=error_responses(*SELECTING),
    dependencies=[Depends(json_body)],
)
async def discard_many(body: DeadLetterSelection, resources: ResourcesDep) -> Discarded:
    """Forget the dead-letter records of one error code, or all; the jobs stay failed."""
    async with resources.sessions.begin() as session:
        discarded = await discard_dead_letters(session, code=body.code)
    resources.changes.wake(None)
    return Discarded(discarded=discarded)


# After /groups: a path segment that is not a job id must not be taken for one here.
@router.get(
    "/{job_id}",
    response_model=DeadLetterDetailRead,
    responses=error_responses(*ADMIN, NotFoundError),
)
async def dead_letter(job_id: uuid.UUID, resources: ResourcesDep) -> DeadLetterDetailRead:
    """One job's dead-letter record: the reason, attempts and last error with its traceback
    (404 when the job has none: never dead-lettered, requeued or discarded since)."""
    async with resources.sessions() as session:
        letter = await dead_letter_of(session, job_id)
    if letter is None:
        raise NotFoundError("this job has no dead letter")
    return DeadLetterDetailRead.of(letter)
