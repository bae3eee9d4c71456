"""/files/…: stored results behind short-lived signed URLs, with HTTP Range support."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from ...errors import GoneError, NotFoundError, UnauthorizedError
from ...storage import is_result_key
from ..deps import ResourcesDep

router = APIRouter(tags=["results"])


@router.get("/files/{key:path}", include_in_schema=False)
async def stored_file(
    key: str,
    resources: ResourcesDep,
    # Plain text, checked by the signer: a missing or malformed one is a bad link (401), not
    # a validation error.
    expires: Annotated[str, Query()] = "",
    signature: Annotated[str, Query()] = "",
) -> FileResponse:
    """Serve a result named by a link from GET /api/jobs/{id}/result (Range requests work)."""
    if not is_result_key(key):
        raise NotFoundError("no such file")
    if not resources.signer.valid(f"/files/{key}", expires, signature):
        raise UnauthorizedError("this link is invalid or has expired; ask for a new one")
    if not await resources.storage.exists(key):
        raise GoneError("the file has been deleted")
    path = await resources.storage.local_path(key)
    return FileResponse(path, media_type=_media_type(key), filename=path.name)


def _media_type(key: str) -> str:
    return "application/x-subrip" if key.endswith(".srt") else "video/mp4"
