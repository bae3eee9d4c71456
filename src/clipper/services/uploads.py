"""Uploads and who owns them: each upload is recorded with its tenant when it is stored, and
a job may name only an upload its caller can reach. Each runs in the caller's session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import UploadRepository
from ..domain.tenancy import Scope
from ..storage import Storage


async def record_upload(
    session: AsyncSession, key: str, scope: Scope, kind: str, size_bytes: int
) -> None:
    await UploadRepository(session).add(key, scope.tenant, kind, size_bytes)


async def upload_reachable(
    session: AsyncSession, storage: Storage, key: str, stored_as: str, scope: Scope
) -> bool:
    """Whether `scope` may use upload `key` (stored under `stored_as`): it is stored, and its
    tenant is the caller's (or the caller reaches every tenant). Another tenant's upload is
    as unreachable as a missing one. An upload stored before uploads had owners has no record:
    only a scope over every tenant reaches it."""
    owner = await UploadRepository(session).owner(key)
    if not (scope.every_tenant if owner is None else scope.reaches(owner)):
        return False
    return await storage.exists(stored_as)
