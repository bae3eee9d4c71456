"""/api/uploads/resumable: an upload in as many requests as it takes (tus 1.0.0: core,
creation, creation-with-upload, termination, expiration), for large sources over connections
that drop. When the last byte arrives the file is checked and recorded exactly as a
one-request upload is (`accept_upload`); the last PATCH answers its key in Clipper-Upload-Key,
and so does every HEAD after it.

Written here rather than with a tus server library: the one maintained for FastAPI
(tuspyserver) writes and locks with blocking calls inside async routes, records an offset
before the bytes it covers are fsync'd, requires `filetype` metadata on HEAD, answers
HTTPExceptions outside the error envelope and the OpenAPI document, and builds Location from
the Host header; its hooks cannot scope an upload to a tenant or answer the upload key.
The protocol itself is small: its state and durability live in services/resumable.py."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.requests import ClientDisconnect

from ...errors import (
    ClipperError,
    LimitReachedError,
    NotFoundError,
    PayloadTooLargeError,
    StorageFullError,
    ValidationFailedError,
)
from ...services.quotas import limits_of, upload_quota_error, upload_room
from ...services.resumable import (
    Partial,
    PartialUploads,
    PastLengthError,
    UploadBusyError,
    partial_uploads,
)
from ...storage import new_upload_key, source_key
from ..auth import Caller
from ..deps import CallerDep, ResourcesDep, get_caller
from ..limits import count_request, default_limits
from ..openapi import CREATING, KEYED, error_responses
from ..resources import Resources
from ..tus import (
    EXTENSIONS,
    MAX_METADATA_CHARS,
    OFFSET_OCTET_STREAM,
    PREFIX,
    TUS_VERSION,
    UPLOAD_KEY_HEADER,
    InvalidTusHeaderError,
    OffsetMismatchError,
    TusVersionError,
    UnsupportedBodyError,
    UploadLockedError,
    check_version,
    metadata_header,
    number_header,
)
from .uploads import accept_upload, file_too_large

logger = logging.getLogger("clipper.uploads")

router = APIRouter(prefix=PREFIX, tags=["uploads"], dependencies=[Depends(get_caller)])

_TUS_ERRORS = (TusVersionError, InvalidTusHeaderError)
# An upload's URL: reading or ending it.
_ONE_UPLOAD = (*KEYED, *_TUS_ERRORS, NotFoundError)
# Writing to it, and finishing it: its bytes, their offset, then what accept_upload answers.
_WRITING = (
    *_ONE_UPLOAD,
    OffsetMismatchError,
    UnsupportedBodyError,
    UploadLockedError,
    PayloadTooLargeError,
    ValidationFailedError,
    LimitReachedError,
    StorageFullError,
)


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


_TUS_RESUMABLE = {"Tus-Resumable": _header("`1.0.0`, on every answer (errors too).")}
_OFFSET = {"Upload-Offset": _header("Bytes of the upload the server holds.", "integer")}
_EXPIRES = {
    "Upload-Expires": _header(
        "When the upload is removed unless written again (24 h after its last write)."
    )
}
_KEY = {
    UPLOAD_KEY_HEADER: _header(
        "Once the last byte has arrived and the file is checked: its `uploadKey`, for "
        "POST /api/jobs."
    )
}


_BYTES = {"type": "integer", "minimum": 0}
_TUS_RESUMABLE_PARAMETER = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "const": TUS_VERSION},
}
_ONLY_TUS_RESUMABLE = {"parameters": [_TUS_RESUMABLE_PARAMETER]}


def _answer(description: str, headers: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "headers": {**_TUS_RESUMABLE, **headers}}


@router.options(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        204: _answer(
            "What this server supports.",
            {
                "Tus-Version": _header("`1.0.0`"),
                "Tus-Extension": _header(f"`{EXTENSIONS}`"),
                "Tus-Max-Size": _header("The largest upload, in bytes (MAX_INPUT_MB).", "integer"),
            },
        ),
        **error_responses(*KEYED),
    },
)
async def discover(resources: ResourcesDep) -> Response:
    """The tus server's capabilities (no Tus-Resumable needed)."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(_largest(resources)),
        },
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,
    responses={
        201: _answer(
            "Created; its URL is in Location. With a body (creation-with-upload), the bytes "
            "it held are stored, as Upload-Offset says, and it may be finished already.",
            {"Location": _header("The upload's URL, for HEAD, PATCH and DELETE."), **_OFFSET}
            | _EXPIRES
            | _KEY,
        ),
        **error_responses(*CREATING, *_TUS_ERRORS, UnsupportedBodyError, StorageFullError),
    },
    openapi_extra={
        "parameters": [
            _TUS_RESUMABLE_PARAMETER,
            {"name": "Upload-Length", "in": "header", "required": True, "schema": _BYTES},
            {
                "name": "Upload-Metadata",
                "in": "header",
                "required": False,
                "description": "`filename <base64>` (any other keys are kept, not read)",
                "schema": {"type": "string", "maxLength": MAX_METADATA_CHARS},
            },
        ]
    },
)
async def create(request: Request, resources: ResourcesDep, caller: CallerDep) -> Response:
    """Start a resumable upload of `Upload-Length` bytes (at most MAX_INPUT_MB, and within
    the key's upload quota, counting its other unfinished uploads at their full length).
    `Upload-Metadata` may name a `filename` (kept for display only). Counted against the
    key's request rate, as POST /api/uploads is; its PATCHes and HEADs are not."""
    check_version(request.headers)
    length = number_header(request.headers, "Upload-Length")
    metadata, filename = metadata_header(request.headers)
    with_body = _has_body(request)
    limits = await count_request(resources, caller)
    if length > _largest(resources):
        raise file_too_large(resources.settings)
    uploads = _partials(resources)
    await uploads.sweep()  # the expired go here (and whenever one is asked for)
    async with resources.sessions() as session:
        room = await upload_room(session, caller.scope, limits)
    reserved = 0 if room is None else await uploads.reserved_bytes(caller.scope.tenant)
    if limits is not None and room is not None and length > room - reserved:
        raise upload_quota_error(limits)
    partial = await uploads.create(caller.scope.tenant, length, metadata, filename)
    headers = {"Location": f"{PREFIX}/{partial.id}"}
    body = _Body(request)
    try:
        async with uploads.writing(partial.id) as current:
            if current is None:  # no one else knows of it yet: cannot happen
                raise ClipperError("the new upload's record is gone")
            # Without a body, only an empty file is whole already (and refused, as one is).
            await _write(body if with_body else None, resources, caller, uploads, current)
            headers |= _state_headers(current)
    except BaseException:
        await uploads.delete(partial.id)  # the client has no URL for it
        raise
    if body.left:  # nor will it learn one: nobody can resume this upload
        await uploads.delete(partial.id)
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head(
    "/{upload_id}",
    response_class=Response,
    responses={
        200: _answer(
            "Where the upload stands.",
            {**_OFFSET, "Upload-Length": _header("Its length.", "integer")}
            | {"Upload-Metadata": _header("As sent at creation, when it was.")}
            | {"Cache-Control": _header("`no-store`")}
            | _EXPIRES
            | _KEY,
        ),
        **error_responses(*_ONE_UPLOAD),
    },
    openapi_extra=_ONLY_TUS_RESUMABLE,
)
async def status_of(
    upload_id: str, request: Request, resources: ResourcesDep, caller: CallerDep
) -> Response:
    """How many bytes the server holds (durably: resume from Upload-Offset), and once it is
    finished, its upload key. Another tenant's upload is a 404, as a missing one is."""
    check_version(request.headers)
    partial = await _reachable(_partials(resources), upload_id, caller)
    headers = {**_state_headers(partial), "Upload-Length": str(partial.length)}
    headers["Cache-Control"] = "no-store"
    if partial.metadata:
        headers["Upload-Metadata"] = partial.metadata
    return Response(status_code=status.HTTP_200_OK, headers=headers)


@router.patch(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        204: _answer(
            "Stored up to Upload-Offset. The PATCH that brings the last byte also checks "
            "and records the file, as POST /api/uploads does, and answers its key.",
            _OFFSET | _EXPIRES | _KEY,
        ),
        **error_responses(*_WRITING),
    },
    openapi_extra={
        "parameters": [
            _TUS_RESUMABLE_PARAMETER,
            {"name": "Upload-Offset", "in": "header", "required": True, "schema": _BYTES},
        ],
        "requestBody": {
            "required": True,
            "content": {OFFSET_OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def append(
    upload_id: str, request: Request, resources: ResourcesDep, caller: CallerDep
) -> Response:
    """Send bytes from `Upload-Offset` on, which must be the upload's offset (409 if not:
    HEAD tells it). A connection that drops keeps what arrived. A PATCH at the final offset
    with an empty body finishes an upload whose finishing failed (503, say) and answers the
    key of a finished one again."""
    check_version(request.headers)
    if _content_type(request) != OFFSET_OCTET_STREAM:
        raise UnsupportedBodyError()
    offset = number_header(request.headers, "Upload-Offset")
    uploads = _partials(resources)
    await _reachable(uploads, upload_id, caller)
    async with _holding(uploads, upload_id, caller) as partial:
        if partial.offset != offset:
            raise OffsetMismatchError(
                f"Upload-Offset is {offset}, but the upload holds {partial.offset} bytes"
            )
        await _write(_Body(request), resources, caller, uploads, partial)
        headers = _state_headers(partial)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        204: _answer("Removed, with every byte of it.", {}),
        **error_responses(*_ONE_UPLOAD, UploadLockedError),
    },
    openapi_extra=_ONLY_TUS_RESUMABLE,
)
async def terminate(
    upload_id: str, request: Request, resources: ResourcesDep, caller: CallerDep
) -> Response:
    """Stop an upload and remove what it stored. A finished one loses only this URL: the
    upload it became stays (retention removes it, as any)."""
    check_version(request.headers)
    uploads = _partials(resources)
    await _reachable(uploads, upload_id, caller)
    async with _holding(uploads, upload_id, caller):
        await uploads.delete(upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- helpers -------------------------------------------------------------------------------


def _partials(resources: Resources) -> PartialUploads:
    return partial_uploads(resources.settings.data_dir)


def _largest(resources: Resources) -> int:
    return resources.settings.max_input_bytes


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _has_body(request: Request) -> bool:
    """Whether a creation carries bytes (creation-with-upload): of the right type, or none."""
    declared = request.headers.get("content-length")
    sent = "transfer-encoding" in request.headers or (declared not in (None, "0"))
    if not sent:
        return False
    if _content_type(request) != OFFSET_OCTET_STREAM:
        raise UnsupportedBodyError()
    return True


async def _reachable(uploads: PartialUploads, upload_id: str, caller: Caller) -> Partial:
    partial = await uploads.get(upload_id)
    if partial is None or not caller.scope.reaches(partial.tenant):
        raise NotFoundError("no such resumable upload")
    return partial


@contextlib.asynccontextmanager
async def _holding(
    uploads: PartialUploads, upload_id: str, caller: Caller
) -> AsyncIterator[Partial]:
    """The upload for this request alone (see PartialUploads.writing), or 404/423."""
    try:
        async with uploads.writing(upload_id) as partial:
            if partial is None or not caller.scope.reaches(partial.tenant):
                raise NotFoundError("no such resumable upload")
            yield partial
    except UploadBusyError:
        raise UploadLockedError() from None


class _Body:
    """A request's body as it streams in. A client that leaves ends it (what came is kept),
    and `left` says so."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.left = False

    @property
    def declared(self) -> int | None:
        value = self.request.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.request.stream():
                if chunk:
                    yield chunk
        except ClientDisconnect:
            self.left = True


async def _write(
    body: _Body | None,
    resources: Resources,
    caller: Caller,
    uploads: PartialUploads,
    partial: Partial,
) -> None:
    """The body (if any) at the upload's offset, then, once the upload is whole, the
    finishing (again, after a failed one: then the body must be empty)."""
    if body is not None and partial.offset + (body.declared or 0) > partial.length:
        raise _past_length(partial)
    if body is not None and not partial.complete:
        try:
            await uploads.append(partial, body.chunks())
        except PastLengthError:
            raise _past_length(partial) from None
    elif body is not None:
        async for _ in body.chunks():
            raise _past_length(partial)
    if partial.complete:
        await _finish(resources, caller, uploads, partial)


def _past_length(partial: Partial) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the body goes past the upload's Upload-Length ({partial.length} bytes)"
    )


async def _finish(
    resources: Resources, caller: Caller, uploads: PartialUploads, partial: Partial
) -> None:
    """The whole file becomes an upload: moved into storage, then probed and recorded by
    `accept_upload` for its owner. Refused (422) or over the quota (429), it is gone, as a
    one-request upload is; any other failure leaves it to finish on the next PATCH."""
    if partial.finished:
        return
    owner = caller if caller.scope.tenant == partial.tenant else Caller(partial.tenant, False)
    if partial.upload_key is None:
        partial.upload_key = new_upload_key()
        await uploads.save(partial)
    key = partial.upload_key
    data = uploads.data_path(partial.id)
    if data.exists():  # not when an earlier finishing moved it, then failed
        await resources.storage.put_file(source_key(key), data)
    async with resources.sessions() as session:
        limits = await limits_of(session, owner.scope, default_limits(resources.settings))
    try:
        await accept_upload(resources, owner, limits, key, partial.length)
    except (ValidationFailedError, LimitReachedError):
        await uploads.delete(partial.id)
        raise
    partial.finished = True
    await uploads.save(partial)
    logger.info(
        "resumable upload %s finished as %s",
        partial.id,
        key,
        extra={"upload_key": key, "size_bytes": partial.length, "file_name": partial.filename},
    )


def _state_headers(partial: Partial) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(partial.offset),
        "Upload-Expires": formatdate(partial.expires_at, usegmt=True),
    }
    if partial.finished and partial.upload_key is not None:
        headers[UPLOAD_KEY_HEADER] = partial.upload_key
    return headers
