"""Failed jobs' dead-letter records, for operators (requeueing them is services.requeue).

The application's dead letters are the `dlq_jobs` records: written in the queue's own
dead-letter transaction, with the job's request, attempts and error, and removed by a
requeue. The queue's `<queue>.dlq` letter is derived from the same transaction and only
delivers the alert (see docs/decisions/2026-12-01-dead-letters.md)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import DlqJob
from ..db.repositories import JobRepository


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead-letter record as operators read it."""

    job_id: uuid.UUID
    code: str
    message: str
    attempts: int
    failed_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": str(self.job_id),
            "code": self.code,
            "message": self.message,
            "attempts": self.attempts,
            "failedAt": self.failed_at.isoformat(),
        }


async def list_dead_letters(session: AsyncSession, limit: int) -> Sequence[DlqJob]:
    """Newest first: each with the job's request, its attempts and its last error."""
    return await JobRepository(session).dead_letters(limit)


@dataclass(frozen=True, slots=True)
class DeadLetterDetail:
    """One job's dead-letter record in full, for its page: the last error with its
    traceback, which the job itself does not keep (only its code and message)."""

    job_id: uuid.UUID
    reason: str
    attempts: int
    error_type: str
    error_code: str
    message: str
    traceback: str
    failed_at: datetime


async def dead_letter_of(session: AsyncSession, job_id: uuid.UUID) -> DeadLetterDetail | None:
    """The job's dead-letter record, or None when it has none (never dead-lettered,
    requeued since, or discarded)."""
    record = await session.get(DlqJob, job_id)
    if record is None:
        return None
    error = record.payload.get("error") or {}
    code = error.get("code")
    return DeadLetterDetail(
        job_id=record.job_id,
        reason=record.reason,
        attempts=int(record.payload.get("attempts", 0)),
        error_type=str(error.get("type", "")),
        # An exception without a code of its own failed the job with the reason's code
        # (PROCESSING_FAILED): the code the job reports either way.
        error_code=record.reason if code is None else str(code),
        message=str(error.get("message", "")),
        traceback=str(error.get("traceback", "")),
        failed_at=record.created_at,
    )


async def dead_letter_views(session: AsyncSession, limit: int) -> list[DeadLetterView]:
    return [_view(record) for record in await list_dead_letters(session, limit)]


def _view(record: DlqJob) -> DeadLetterView:
    error = record.payload.get("error") or {}
    return DeadLetterView(
        job_id=record.job_id,
        code=record.reason,
        message=str(error.get("message", "")),
        attempts=int(record.payload.get("attempts", 0)),
        failed_at=record.created_at,
    )


@dataclass(frozen=True, slots=True)
class DeadLetterGroup:
    """The dead-letter records of one error code: how many, and the newest as a sample."""

    code: str
    count: int
    sample: DeadLetterView


async def dead_letter_groups(session: AsyncSession) -> list[DeadLetterGroup]:
    """Every error code among the dead letters, largest group first (one query)."""
    return [
        DeadLetterGroup(record.reason, count, _view(record))
        for record, count in await JobRepository(session).dead_letter_groups()
    ]


async def discard_dead_letters(
    session: AsyncSession, *, job_id: uuid.UUID | None = None, code: str | None = None
) -> int:
    """Forget dead-letter records (one job's, one code's, or with neither all), in the
    caller's transaction; how many. The jobs stay failed, with their error and events: an
    operator who discards a letter has decided not to run it again, not to rewrite history.
    """
    return await JobRepository(session).discard_dead_letters(job_id=job_id, reason=code)
