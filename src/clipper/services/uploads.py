"""Uploads, who owns them and what they hold: each upload is recorded with its tenant and its
probed media when it is stored, and a job may name only an upload its caller can reach. Each
runs in the caller's session."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import UploadRepository
from ..domain.tenancy import Scope
from ..media.probe import MediaInfo
from ..storage import Storage


async def record_upload(
    session: AsyncSession,
    key: str,
    scope: Scope,
    kind: str,
    size_bytes: int,
    media: MediaInfo | None,
) -> None:
    stored = None if media is None else dataclasses.asdict(media)
    await UploadRepository(session).add(key, scope.tenant, kind, size_bytes, stored)


@dataclass(frozen=True, slots=True)
class ReachableUpload:
    # What its probe found; None for a sidecar, or an upload stored before uploads kept it.
    media: MediaInfo | None


async def reachable_upload(
    session: AsyncSession, storage: Storage, key: str, stored_as: str, scope: Scope
) -> ReachableUpload | None:
    """Upload `key` (stored under `stored_as`) when `scope` may use it: it is stored, and its
    tenant is the caller's (or the caller reaches every tenant); else None. Another tenant's
    upload is as unreachable as a missing one. An upload stored before uploads had owners has
    no record: only a scope over every tenant reaches it."""
    upload = await UploadRepository(session).get(key)
    if not (scope.every_tenant if upload is None else scope.reaches(upload.tenant_id)):
        return None
    if not await storage.exists(stored_as):
        return None
    return ReachableUpload(None if upload is None else _media(upload.media))


_MEDIA_FIELDS = frozenset(field.name for field in dataclasses.fields(MediaInfo))


def _media(stored: dict[str, Any] | None) -> MediaInfo | None:
    """The stored facts as a MediaInfo: fields added since it was stored take their defaults,
    and any no longer known are ignored."""
    if stored is None:
        return None
    known = {name: value for name, value in stored.items() if name in _MEDIA_FIELDS}
    if "subtitle_languages" in known:
        known["subtitle_languages"] = tuple(known["subtitle_languages"])
    return MediaInfo(**known)
