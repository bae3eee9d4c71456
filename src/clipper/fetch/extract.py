"""Finding the media behind a page URL with yt-dlp (only when ENABLE_YTDLP is on)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import yt_dlp

from .download import FetchFailedError

logger = logging.getLogger("clipper.fetch")


class UnsupportedUrlError(Exception):
    """yt-dlp finds no single video at the URL."""

    code = "UNSUPPORTED_URL"


async def media_url(page_url: str) -> str:
    """The direct media URL yt-dlp finds for `page_url` (itself, for a direct media file)."""
    return await asyncio.to_thread(_extract, page_url)


def _extract(page_url: str) -> str:
    options: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noplaylist": True,
        "skip_download": True,
        "socket_timeout": 15,
        "format": "best[ext=mp4]/best",
        "logger": logger,
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(page_url, download=False)
    except yt_dlp.utils.DownloadError as exc:
        if "Unsupported URL" in str(exc):
            raise UnsupportedUrlError("no video found at this URL") from None
        raise FetchFailedError(f"the page could not be read: {exc}") from None
    url = (info or {}).get("url")
    if not url:
        raise UnsupportedUrlError("no single video file at this URL")
    return str(url)
