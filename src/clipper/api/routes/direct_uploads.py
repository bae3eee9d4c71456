"""/api/uploads/presigned and /api/uploads/{key}/complete: a direct upload, which the client
sends to the object store itself (a presigned PUT), then completes: checked and probed where
it lies, it is then an upload like any other."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, Response, status
from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ...domain.uploads import UploadState
from ...errors import (
    DirectUploadsUnavailableError,
    NotFoundError,
    StorageUnavailableError,
    UnsupportedMediaTypeError,
    UploadNotReceivedError,
    ValidationFailedError,
)
from ...services.quotas import check_upload_bytes
from ...services.sources import CheckedUpload
from ...services.uploads import (
    RecordedUpload,
    complete_pending_upload,
    forget_pending_upload,
    owned_upload,
    record_pending_upload,
)
from ...storage import new_upload_key, source_key
from ..auth import Caller
from ..deps import CallerDep, ResourcesDep, get_caller, json_body
from ..limits import count_request
from ..openapi import CREATING, KEYED, error_responses
from ..resources import Resources
from ..schemas import KEY_MAX, Wire
from .uploads import UploadRead, file_too_large, probed_upload

router = APIRouter(prefix="/api/uploads", tags=["uploads"], dependencies=[Depends(get_caller)])

# What a direct upload may declare: a video or audio type, or an .srt sidecar's (the probe
# still decides what the file is). No parameters (`; codecs=…`) and nothing but a media type's
# characters (RFC 6838): the value is signed into the URL and sent back as a header verbatim.
_DIRECT_TYPE = re.compile(
    r"(video|audio)/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}|application/x-subrip|text/srt"
)


class DirectUploadCreate(Wire):
    """A file the client will send to the object store itself."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        json_schema_extra={
            "examples": [{"contentType": "video/mp4", "sizeBytes": 1843321, "filename": "talk.mp4"}]
        },
    )

    content_type: str = Field(
        max_length=140,
        description="video/…, audio/…, application/x-subrip or text/srt: sent as the PUT's "
        "Content-Type, which the store holds it to.",
    )
    size_bytes: int = Field(
        ge=1,
        description="The file's exact size: at most MAX_INPUT_MB, within the key's upload "
        "quota (counted from now on). The store refuses a PUT of another length.",
    )
    filename: str | None = Field(
        default=None, max_length=255, description="For the client's own use: not kept."
    )

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if _DIRECT_TYPE.fullmatch(value) is None:
            raise ValueError("must be video/…, audio/…, application/x-subrip or text/srt")
        return value


class DirectUploadRead(Wire):
    """Where to send the file: one `method` request to `url` with exactly `headers`, before
    `expiresAt`; then POST /api/uploads/{uploadKey}/complete."""

    upload_key: str
    method: Literal["PUT"]
    # A credential until it expires (it names the store's access key id, never its secret).
    url: str
    headers: dict[str, str]
    expires_at: datetime


@router.post(
    "/presigned",
    status_code=status.HTTP_201_CREATED,
    response_model=DirectUploadRead,
    responses=error_responses(
        *CREATING,
        UnsupportedMediaTypeError,
        DirectUploadsUnavailableError,
        StorageUnavailableError,
    ),
    dependencies=[Depends(json_body)],
)
async def presign(
    body: DirectUploadCreate, resources: ResourcesDep, caller: CallerDep
) -> DirectUploadRead:
    """Ask for a direct upload: a presigned PUT that sends the file to the object store
    itself, not through this API (STORAGE_URL only: 409 with local storage). The declared
    size counts against the key's upload quota from now on, as a stored upload's does. Send
    the file, then complete the upload (POST /api/uploads/{uploadKey}/complete) to use its
    `uploadKey` in jobs; one never completed is deleted an hour after `expiresAt`."""
    settings = resources.settings
    limits = await count_request(resources, caller)
    if body.size_bytes > settings.max_input_bytes:
        raise file_too_large(settings)
    key = new_upload_key()
    ttl = settings.upload_url_ttl_sec
    # Taken before signing: the answered expiry is never later than the URL's own.
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    # Signed locally, before anything is recorded: should the record fail, no one holds it.
    direct = await resources.storage.presigned_upload(
        source_key(key), body.content_type, body.size_bytes, ttl
    )
    if direct is None:
        raise DirectUploadsUnavailableError()
    # Under the tenant's upload lock, as a stored upload is counted: concurrent requests
    # cannot both take the last room.
    async with resources.sessions.begin() as session:
        await check_upload_bytes(session, caller.scope, limits, body.size_bytes)
        await record_pending_upload(
            session, key, caller.scope, body.content_type, body.size_bytes, expires_at
        )
    return DirectUploadRead(
        upload_key=key,
        method=direct.method,
        url=direct.url,
        headers=dict(direct.headers),
        expires_at=expires_at,
    )


def _no_such_upload() -> NotFoundError:
    return NotFoundError("no upload has this key")


@router.post(
    "/{upload_key}/complete",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadRead,
    responses={
        200: {"model": UploadRead, "description": "Completed before: the same upload again."},
        **error_responses(
            *KEYED,
            NotFoundError,
            UploadNotReceivedError,
            ValidationFailedError,
            StorageUnavailableError,
        ),
    },
)
async def complete(
    upload_key: str, resources: ResourcesDep, caller: CallerDep, response: Response
) -> UploadRead:
    """Complete a direct upload once its file is in the store: checked and probed exactly as
    POST /api/uploads checks a file, then an upload like any other (201), its `uploadKey` good
    for POST /api/jobs. Completing it again answers the same (200). 404 for an unknown key or
    another key's upload; 409 UPLOAD_NOT_RECEIVED before the file is in the store; 422 naming
    `uploadKey` when the stored file is not the declared size or no media (it is deleted)."""
    if len(upload_key) > KEY_MAX:
        raise _no_such_upload()
    try:
        path = source_key(upload_key)
    except ValueError:
        raise _no_such_upload() from None
    recorded = await _recorded(resources, caller, upload_key)
    if recorded.state == UploadState.PENDING:
        size = await resources.storage.size(path)
        if size is None:
            raise UploadNotReceivedError(
                details=[{"field": "uploadKey", "message": "nothing has been uploaded yet"}]
            )
        if size != recorded.size_bytes:
            await _refuse(resources, upload_key)
            raise ValidationFailedError.field(
                "uploadKey",
                f"the store holds {size} bytes, not the {recorded.size_bytes} declared: "
                "ask for a new upload",
            )
        stored = await _store_direct_upload(resources, upload_key, size)
        if stored is not None:
            return stored
        # Not pending any more: a concurrent completion stored it first (answered below), or
        # retention deleted it (404).
        recorded = await _recorded(resources, caller, upload_key)
    response.status_code = status.HTTP_200_OK
    assert recorded.kind is not None  # a stored upload's is known (the table's check)
    return UploadRead.of(
        upload_key, recorded.size_bytes, CheckedUpload(recorded.kind, recorded.media)
    )


async def _recorded(resources: Resources, caller: Caller, key: str) -> RecordedUpload:
    async with resources.sessions() as session:
        recorded = await owned_upload(session, key, caller.scope)
    if recorded is None:
        raise _no_such_upload()
    return recorded


async def _store_direct_upload(resources: Resources, key: str, size: int) -> UploadRead | None:
    """A direct upload's file, `size` bytes as declared: probed as `accept_upload` probes,
    then its pending record made stored; None when it is no longer pending. No quota check:
    its declared bytes, which it holds, have counted since it was presigned."""
    try:
        checked = await probed_upload(resources, key, "uploadKey")
    except ValidationFailedError:
        await _refuse(resources, key)
        raise
    async with resources.sessions.begin() as session:
        if not await complete_pending_upload(session, key, checked.kind, size, checked.media):
            return None
    return UploadRead.of(key, size, checked)


async def _refuse(resources: Resources, key: str) -> None:
    """A direct upload that will never be stored: its files go, and then its pending record
    (freeing its quota; the client asks for a new upload)."""
    await resources.storage.delete_upload(key)
    async with resources.sessions.begin() as session:
        await forget_pending_upload(session, key)
