"""Uploads, who owns them and what they hold: each upload is recorded with its tenant and its
probed media when it is stored, and a job may name only an upload its caller can reach. A
direct upload is recorded pending when it is presigned, and stored once completed. Each runs
in the caller's session."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.repositories import UploadRepository
from ..domain.tenancy import Scope
from ..domain.uploads import UploadState
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
    await UploadRepository(session).add(key, scope.tenant, kind, size_bytes, _stored(media))


async def record_pending_upload(
    session: AsyncSession,
    key: str,
    scope: Scope,
    content_type: str,
    size_bytes: int,
    expires_at: datetime,
) -> None:
    """A direct upload just presigned: its tenant's, counted at `size_bytes` in its quota."""
    await UploadRepository(session).add_pending(
        key, scope.tenant, content_type, size_bytes, expires_at
    )


async def complete_pending_upload(
    session: AsyncSession, key: str, kind: str, size_bytes: int, media: MediaInfo | None
) -> bool:
    """The pending upload `key` is stored now, holding `media`; False when it is not pending
    (retention deleted it meanwhile)."""
    return await UploadRepository(session).complete(key, kind, size_bytes, _stored(media))


async def forget_pending_upload(session: AsyncSession, key: str) -> None:
    """A pending upload that will never be stored: its record goes, and its quota with it."""
    await UploadRepository(session).delete_pending(key)


@dataclass(frozen=True, slots=True)
class RecordedUpload:
    """An upload's record: pending (kind None, `size_bytes` as declared) or stored."""

    state: UploadState
    kind: Literal["media", "subtitles"] | None
    size_bytes: int
    media: MediaInfo | None


async def owned_upload(session: AsyncSession, key: str, scope: Scope) -> RecordedUpload | None:
    """The record of upload `key` when `scope` reaches it; None when there is none or it is
    another tenant's (the same to the caller)."""
    upload = await UploadRepository(session).get(key)
    if upload is None or not scope.reaches(upload.tenant_id):
        return None
    kind = cast(Literal["media", "subtitles"] | None, upload.kind)  # the table allows no other
    return RecordedUpload(UploadState(upload.state), kind, upload.size_bytes, _media(upload.media))


def _stored(media: MediaInfo | None) -> dict[str, Any] | None:
    return None if media is None else dataclasses.asdict(media)


@dataclass(frozen=True, slots=True)
class ReachableUpload:
    # What its probe found; None for a sidecar, or an upload stored before uploads kept it.
    media: MediaInfo | None


async def reachable_upload(
    session: AsyncSession, storage: Storage, key: str, stored_as: str, scope: Scope
) -> ReachableUpload | None:
    """Upload `key` (stored under `stored_as`) when `scope` may use it: it is stored (not a
    pending direct upload), and its tenant is the caller's (or the caller reaches every
    tenant); else None. Another tenant's upload is as unreachable as a missing one. An upload
    stored before uploads had owners has no record: only a scope over every tenant reaches
    it."""
    upload = await UploadRepository(session).get(key)
    if not (scope.every_tenant if upload is None else scope.reaches(upload.tenant_id)):
        return None
    if upload is not None and upload.state != UploadState.STORED:
        return None  # a direct upload not completed: its bytes are not checked yet
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
