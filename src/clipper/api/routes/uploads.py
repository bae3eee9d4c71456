"""/api/uploads: a source video, streamed to storage and probed, for POST /api/jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, Depends, Request, status
from starlette.datastructures import FormData, UploadFile

from ...errors import PayloadTooLargeError, StorageFullError, ValidationFailedError, is_disk_full
from ...services.sources import UnusableUploadError, check_upload
from ...services.uploads import record_upload
from ...storage import TooLargeError, new_upload_key, source_key
from ..deps import CallerDep, ResourcesDep, get_caller
from ..schemas import Wire

router = APIRouter(prefix="/api/uploads", tags=["uploads"], dependencies=[Depends(get_caller)])

CHUNK = 1 << 20


class UploadRead(Wire):
    upload_key: str
    kind: Literal["media", "subtitles"]
    size_bytes: int
    duration_ms: int
    has_video: bool
    has_audio: bool


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadRead)
async def upload(request: Request, resources: ResourcesDep, caller: CallerDep) -> UploadRead:
    """Upload a video or audio file as multipart form field `file` (at most MAX_INPUT_MB).
    It is probed: it must hold a video or audio stream no longer than
    MAX_CLIP_INPUT_DURATION_SEC. Answers the `uploadKey` to use in POST /api/jobs. An .srt
    file is kept as a subtitles sidecar (`kind: subtitles`), for a job's `subtitlesKey`."""
    settings = resources.settings
    form = await _form(request)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise ValidationFailedError.field("file", "is required (multipart form field)")
    key = new_upload_key()
    path = source_key(key)
    try:
        size = await resources.storage.save(path, _chunks(file), int(settings.max_input_mb * 2**20))
    except TooLargeError:
        message = f"the file is over MAX_INPUT_MB ({settings.max_input_mb:g} MB)"
        raise PayloadTooLargeError(message) from None
    finally:
        await file.close()
    try:
        checked = await check_upload(resources.storage, key, settings.max_clip_input_duration_sec)
    except UnusableUploadError as exc:
        raise ValidationFailedError.field("file", str(exc)) from exc
    # Recorded with its owner: only the caller's key (or an admin's) may make jobs from it.
    async with resources.sessions.begin() as session:
        await record_upload(session, key, caller.scope, checked.kind, size)
    return UploadRead(
        upload_key=key,
        kind=checked.kind,
        size_bytes=size,
        duration_ms=checked.duration_ms,
        has_video=checked.has_video,
        has_audio=checked.has_audio,
    )


async def _form(request: Request) -> FormData:
    """The parsed form. Starlette spools the file to the system's temporary folder first (past
    1 MB), so a full disk there is as much a 507 as a full DATA_DIR, and the log says which."""
    try:
        return await request.form(max_files=1, max_fields=5)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise StorageFullError("the temporary folder (TMPDIR)") from None


async def _chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(CHUNK):
        yield chunk
