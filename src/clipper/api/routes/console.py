"""The Clipper Console: the page at `/` (and its admin views under `/console/`), its static
files, and `GET /api/console/config`, what the page adapts to. The files are package data
(src/clipper/api/console): no build step, nothing fetched from elsewhere at run time."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from ..deps import ResourcesDep
from ..schemas import Wire

router = APIRouter(include_in_schema=False)

ASSETS = Path(__file__).resolve().parent.parent / "console"
INDEX = "index.html"

# Only what the page needs: its own origin's scripts and styles (no inline ones), the local
# file being clipped as a blob: URL, and result links, which point at an object store's
# https:// host when STORAGE_URL is S3.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: https:",
        "media-src 'self' blob: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is small and changes with each release: revalidate rather than serve stale.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


class ConsoleConfig(Wire):
    url_sources: bool
    max_upload_mb: float
    clip_max_duration_sec: float
    api_keys: bool


def _file(name: str) -> Response:
    """The asset `name` (a plain file directly in ASSETS), else the 404 envelope's twin."""
    path = (ASSETS / name).resolve()
    kind = CONTENT_TYPES.get(path.suffix)
    # Only files of a known kind, directly in the folder: no `..`, no subfolders, no dotfiles.
    if kind is None or path.parent != ASSETS or name.startswith(".") or not path.is_file():
        return Response(
            '{"error": {"code": "NOT_FOUND", "message": "no such file"}}',
            status_code=404,
            media_type="application/json",
        )
    return FileResponse(path, media_type=kind, headers=SECURITY_HEADERS)


@router.get("/")
async def page() -> Response:
    """The make-a-clip page."""
    return _file(INDEX)


@router.get("/console")
@router.get("/console/")
async def console_page() -> Response:
    """The same page; its hash router shows the admin views (`/console/#/admin`)."""
    return _file(INDEX)


@router.get("/console/{name}")
async def asset(name: str) -> Response:
    """A stylesheet, module or icon of the page."""
    return _file(name)


@router.get("/api/console/config", response_model=ConsoleConfig)
async def config(resources: ResourcesDep) -> ConsoleConfig:
    """What the page adapts to; no key needed (it says nothing a caller could not learn by
    trying)."""
    settings = resources.settings
    return ConsoleConfig(
        url_sources=settings.enable_ytdlp,
        max_upload_mb=settings.max_input_mb,
        clip_max_duration_sec=settings.clip_max_duration_sec,
        api_keys=settings.enable_api_keys,
    )
