"""Per-key limits, shared by every API process through PostgreSQL: a request rate for
creating uploads and jobs, a cap on a key's queued + processing jobs, and a cap on the bytes
of its stored uploads. Over a limit: LimitReachedError (429 with Retry-After and a code that
names the limit). Admin keys, and the local service with keys off, are not limited."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import (
    ApiKeyRepository,
    JobRepository,
    RateLimitRepository,
    UploadRepository,
    lock_tenant,
)
from ..domain.tenancy import Scope
from ..errors import LimitReachedError

# No finish time can be promised for a job: how long a client over a count limit is asked
# to wait before trying again (a job of a few seconds' clip takes about this long).
COUNT_RETRY_AFTER_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Limits:
    rate_per_minute: int
    max_active_jobs: int
    max_upload_bytes: int


async def limits_of(session: AsyncSession, scope: Scope, defaults: Limits) -> Limits | None:
    """The caller's limits: its key's overrides over `defaults`; None when it has none."""
    if scope.every_tenant:
        return None
    key = await ApiKeyRepository(session).get(scope.tenant)
    if key is None:
        return defaults
    return Limits(
        rate_per_minute=key.rate_per_minute or defaults.rate_per_minute,
        max_active_jobs=key.max_active_jobs or defaults.max_active_jobs,
        max_upload_bytes=key.max_upload_bytes or defaults.max_upload_bytes,
    )


async def take_request(session: AsyncSession, scope: Scope, limits: Limits | None) -> None:
    """Count one creating request (an upload, a job, a batch) against the key's rate."""
    if limits is None:
        return
    wait = await RateLimitRepository(session).take(scope.tenant, limits.rate_per_minute)
    if wait is not None:
        raise LimitReachedError(
            "RATE_LIMITED",
            f"this key may create {limits.rate_per_minute} uploads or jobs per minute",
            math.ceil(wait),
        )


async def check_active_jobs(
    session: AsyncSession, scope: Scope, limits: Limits | None, adding: int
) -> None:
    """Whether `adding` more jobs keep the key within its queued + processing cap. Holds the
    tenant's job lock until the caller's transaction ends, so that the jobs it then inserts
    are counted by the next check in any process."""
    if limits is None:
        return
    await lock_tenant(session, "jobs", scope.tenant)
    active = await JobRepository(session).unfinished_count(scope.tenant)
    if active + adding > limits.max_active_jobs:
        raise LimitReachedError(
            "ACTIVE_JOBS_LIMIT",
            f"this key may have {limits.max_active_jobs} queued or processing jobs; it has "
            f"{active}",
            COUNT_RETRY_AFTER_SECONDS,
        )


async def upload_room(session: AsyncSession, scope: Scope, limits: Limits | None) -> int | None:
    """Bytes the key may still store (None: no cap); for stopping an upload early."""
    if limits is None:
        return None
    stored = await UploadRepository(session).stored_bytes(scope.tenant)
    return max(0, limits.max_upload_bytes - stored)


async def check_upload_bytes(
    session: AsyncSession, scope: Scope, limits: Limits | None, adding: int
) -> None:
    """Whether an upload of `adding` bytes fits the key's cap; holds the tenant's upload lock
    until the caller's transaction ends (the caller records the upload in it)."""
    if limits is None:
        return
    await lock_tenant(session, "uploads", scope.tenant)
    room = await upload_room(session, scope, limits)
    if room is not None and adding > room:
        raise upload_quota_error(limits)


def upload_quota_error(limits: Limits) -> LimitReachedError:
    megabytes = limits.max_upload_bytes / 2**20
    return LimitReachedError(
        "UPLOAD_QUOTA",
        f"this key may store {megabytes:g} MB of uploads (older ones are deleted after "
        "RETENTION_HOURS)",
        COUNT_RETRY_AFTER_SECONDS,
    )
