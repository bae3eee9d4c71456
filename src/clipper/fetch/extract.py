"""Finding the media behind a page URL with yt-dlp (only when ENABLE_YTDLP is on).

yt-dlp makes its requests only through GuardedRH (ytdlp_network.py): every page, API call,
manifest and redirect is vetted by the guard and pinned to the vetted address. The media URL
it finds is vetted too, and must be a single file over http(s), which is all the guarded
downloader fetches (no HLS or DASH). What went wrong is logged; the job says only what kind
of failure it was, never an internal URL or status."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Collection, Iterator
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, RequestError
from yt_dlp.utils import ExtractorError, UnsupportedError

from .download import FetchFailedError, FetchRefusedError
from .guard import ForbiddenUrlError, Resolver, check_url, system_resolver
from .ytdlp_network import Deadline, GuardedRH, redacted

logger = logging.getLogger("clipper.fetch")

# Past this, the whole extraction (all its requests) gives up: FETCH_FAILED.
EXTRACT_TIMEOUT_SECONDS = 120.0

_UNREADABLE = "the page could not be read"
_REFUSED = "the page leads to an address Clipper does not fetch"
_NO_VIDEO = "no single video file at this URL"


class UnsupportedUrlError(Exception):
    """yt-dlp finds no single video at the URL."""

    code = "UNSUPPORTED_URL"


async def media_url(
    page_url: str,
    *,
    allowlist: Collection[str] = (),
    resolve: Resolver = system_resolver,
    timeout_seconds: float = EXTRACT_TIMEOUT_SECONDS,
) -> str:
    """The direct media URL yt-dlp finds for `page_url` (itself, for a direct media file).
    `allowlist` is ALLOWLIST_HOSTS, as for the downloader."""
    deadline = Deadline(timeout_seconds)
    try:
        return await asyncio.to_thread(_extract, page_url, allowlist, resolve, deadline)
    finally:
        deadline.expire()  # cancelled: the thread stops at its next request or read


class _GuardedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]  # yt-dlp has no type hints
    def __init__(self, options: dict[str, Any], handler: functools.partial[GuardedRH]) -> None:
        self._guarded = handler
        super().__init__(options)

    def build_request_director(self, handlers: object, preferences: object = None) -> Any:
        # Whatever handlers yt-dlp would build (urllib, requests, curl_cffi, websockets),
        # only the guarded one is.
        return super().build_request_director([self._guarded])


def _extract(
    page_url: str, allowlist: Collection[str], resolve: Resolver, deadline: Deadline
) -> str:
    refusals: list[str] = []
    handler = functools.partial(
        GuardedRH, allowlist=allowlist, resolve=resolve, deadline=deadline, refusals=refusals
    )
    options: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noplaylist": True,
        "skip_download": True,
        "socket_timeout": 15,
        # One file over plain http(s), the only kind the guarded downloader fetches.
        "format": "best[ext=mp4][protocol~='^https?$']/best[protocol~='^https?$']",
        "logger": _YtDlpLog(),
        "proxy": "",  # no proxy from the environment: GuardedRH connects directly, pinned
        "cachedir": False,  # nothing a page sends is written to disk
    }
    with _GuardedYoutubeDL(options, handler) as ydl:
        # Fail closed should a yt-dlp release stop building its handlers through
        # build_request_director: never fall back to unguarded requests.
        if list(ydl._request_director.handlers) != [GuardedRH.RH_KEY]:
            raise RuntimeError("yt-dlp no longer sends its requests through the guard")
        try:
            info = ydl.extract_info(page_url, download=False)
        except Exception as exc:  # its errors, and its extractors' bugs: all said in the log only
            logger.warning("yt-dlp could not read %s: %s", redacted(page_url), redacted(str(exc)))
            raise _job_error(exc, refusals) from None
    url = (info or {}).get("url")
    if not isinstance(url, str) or (info or {}).get("protocol") not in ("http", "https"):
        raise UnsupportedUrlError(_NO_VIDEO)
    try:
        check_url(url, allowlist, resolve)
    except ForbiddenUrlError as exc:
        logger.warning(
            "the page %s leads to %s, which the guard refuses: %s",
            redacted(page_url),
            redacted(url),
            exc,
        )
        raise ForbiddenUrlError(_REFUSED) from None
    return url


def _job_error(error: Exception, refusals: list[str]) -> Exception:
    """The job's error for a failed extraction: its code says what kind of failure it was,
    its message nothing the page or the network said."""
    if refusals:
        return ForbiddenUrlError(_REFUSED)
    causes = list(_causes(error))
    status = next((cause.status for cause in causes if isinstance(cause, HTTPError)), None)
    if status is not None and status < 500:
        return FetchRefusedError(_UNREADABLE)
    if status is not None or any(isinstance(cause, RequestError) for cause in causes):
        return FetchFailedError(_UNREADABLE)
    if any(isinstance(cause, UnsupportedError) for cause in causes):
        return UnsupportedUrlError("no video found at this URL")
    # yt-dlp's "expected" errors are the site's answers (private, removed, geo-blocked, only
    # streamed in pieces); the others are its extractor failing on a page that changed.
    if any(isinstance(cause, ExtractorError) and cause.expected for cause in causes):
        return UnsupportedUrlError(_NO_VIDEO)
    return FetchFailedError(_UNREADABLE)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and everything it was caused by, through yt-dlp's own links (`cause`,
    `exc_info`) as well as Python's."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        linked = [
            getattr(current, "cause", None),
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) == 3 else None,
            current.__cause__,
            current.__context__,
        ]
        pending += [link for link in linked if isinstance(link, BaseException)]


class _YtDlpLog:
    """yt-dlp's messages, redacted, at debug level: its errors come back as a DownloadError,
    logged once (as a warning) where it is handled."""

    def debug(self, message: str) -> None:
        logger.debug("yt-dlp: %s", redacted(message))

    def info(self, message: str) -> None:
        logger.debug("yt-dlp: %s", redacted(message))

    def warning(self, message: str) -> None:
        logger.debug("yt-dlp warning: %s", redacted(message))

    def error(self, message: str) -> None:
        logger.debug("yt-dlp error: %s", redacted(message))
