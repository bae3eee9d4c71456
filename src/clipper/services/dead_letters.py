"""Failed jobs' dead-letter records, for operators (requeueing them is services.requeue)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import DlqJob
from ..db.repositories import JobRepository


async def list_dead_letters(session: AsyncSession, limit: int) -> Sequence[DlqJob]:
    """Newest first: each with the job's request, its attempts and its last error."""
    return await JobRepository(session).dead_letters(limit)
