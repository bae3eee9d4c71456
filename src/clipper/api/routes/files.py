"""/files/…: stored results behind short-lived signed URLs, with HTTP Range support."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from ...errors import GoneError, NotFoundError, UnauthorizedError
from ...storage import is_result_key
from ..deps import ResourcesDep
from ..openapi import error_responses

router = APIRouter(tags=["results"])

_BYTES = {"schema": {"type": "string", "format": "binary"}}
# What each result is served as, by its file name's extension: a clip in the container asked
# (output.container), its subtitles, its thumbnail and its preview.
_MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".srt": "application/x-subrip",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_FILE = dict.fromkeys(_MEDIA_TYPES.values(), _BYTES)
_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
# FileResponse answers Range requests itself (RFC 9110): 206, or a plain 400 or 416.
_RANGES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole file.", "content": _FILE},
    206: {
        "description": "The requested byte range(s) of the file.",
        "headers": {"Content-Range": {"schema": {"type": "string"}}},
        "content": {**_FILE, "multipart/byteranges": _BYTES},
    },
    400: {"description": "A malformed Range header.", "content": _PLAIN},
    416: {
        "description": "No requested range lies within the file.",
        "headers": {"Content-Range": {"schema": {"type": "string"}}},
        "content": _PLAIN,
    },
}


@router.get(
    "/files/{key:path}",
    response_class=FileResponse,
    responses={**_RANGES, **error_responses(UnauthorizedError, NotFoundError, GoneError)},
    openapi_extra={
        "parameters": [
            {
                "name": "Range",
                "in": "header",
                "required": False,
                "description": "e.g. `bytes=0-1048575`: part of the file (206).",
                "schema": {"type": "string"},
            }
        ]
    },
)
async def stored_file(
    key: str,
    resources: ResourcesDep,
    # Plain text, checked by the signer: a missing or malformed one is a bad link (401), not
    # a validation error.
    expires: Annotated[str, Query()] = "",
    signature: Annotated[str, Query()] = "",
) -> FileResponse:
    """Serve a result named by a link from GET /api/jobs/{id}/result (Range requests work).
    The link is all the authority it needs, no API key: 401 when it is invalid or has
    expired, 404 for a key that names no result, 410 once the file is deleted."""
    if not is_result_key(key):
        raise NotFoundError("no such file")
    if not resources.signer.valid(f"/files/{key}", expires, signature):
        raise UnauthorizedError("this link is invalid or has expired; ask for a new one")
    if not await resources.storage.exists(key):
        raise GoneError("the file has been deleted")
    path = await resources.storage.local_path(key)
    return FileResponse(path, media_type=media_type(key), filename=path.name)


def media_type(key: str) -> str:
    """By the extension of the name Clipper gave the file; video/mp4 for any other (the
    clips stored before there were other containers are all clip.mp4)."""
    _, dot, extension = key.rpartition(".")
    return _MEDIA_TYPES.get(f"{dot}{extension}".lower(), "video/mp4")
