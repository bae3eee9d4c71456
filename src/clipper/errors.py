"""Clipper's error tree: each class is one API error code and HTTP status; its docstring is the
default message. The API turns every one into the error envelope in a single handler."""

from __future__ import annotations

import errno
import os
from typing import Any

# errno values that mean "no room left": the disk is full, or the quota on it is used up.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` is an OSError saying the disk (or the quota on it) is full."""
    return isinstance(error, OSError) and error.errno in _DISK_FULL


def says_disk_full(text: str) -> bool:
    """Whether a child process's error output reports a full disk (FFmpeg prints strerror)."""
    return any(os.strerror(number) in text for number in _DISK_FULL)


class ClipperError(Exception):
    """Something went wrong on our side."""

    code = "INTERNAL"
    status = 500

    def __init__(self, message: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message or (self.__doc__ or "").strip())
        self.message = str(self.args[0])
        self.details = details


class ValidationFailedError(ClipperError):
    """The request is not valid."""

    code = "VALIDATION_FAILED"
    status = 422

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailedError:
        return cls(f"{name}: {message}", [{"field": name, "message": message}])


class ClipTooLongError(ValidationFailedError):
    """The clip is longer than CLIP_MAX_DURATION_SEC allows."""

    code = "CLIP_TOO_LONG"


class UnauthorizedError(ClipperError):
    """A valid API key is required."""

    code = "UNAUTHORIZED"
    status = 401


class ForbiddenError(ClipperError):
    """This needs an admin API key."""

    code = "FORBIDDEN"
    status = 403


class UrlSourcesDisabledError(ForbiddenError):
    """URL sources are off on this server (ENABLE_YTDLP)."""

    code = "URL_SOURCES_DISABLED"


class NotFoundError(ClipperError):
    """No such job."""

    code = "NOT_FOUND"
    status = 404


class ConflictError(ClipperError):
    """This Idempotency-Key was used with a different request."""

    code = "IDEMPOTENCY_CONFLICT"
    status = 409


class InvalidStateError(ClipperError):
    """The job is not in a state that allows this."""

    code = "INVALID_STATE"
    status = 409


class NotReadyError(ClipperError):
    """The job has no result yet."""

    code = "NOT_READY"
    status = 409


class DirectUploadsUnavailableError(ClipperError):
    """Direct uploads need object storage (STORAGE_URL); use POST /api/uploads."""

    code = "DIRECT_UPLOADS_UNAVAILABLE"
    status = 409


class UploadNotReceivedError(ClipperError):
    """Nothing has been uploaded to this upload's URL yet: send the file, then complete it."""

    code = "UPLOAD_NOT_RECEIVED"
    status = 409


class GoneError(ClipperError):
    """The job has expired and its results are deleted."""

    code = "GONE"
    status = 410


class PayloadTooLargeError(ClipperError):
    """The request body is too large."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class UnsupportedMediaTypeError(ClipperError):
    """The body must be JSON (Content-Type: application/json)."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class StorageFullError(ClipperError):
    """The server's storage is full; try again later."""

    code = "STORAGE_FULL"
    status = 507

    def __init__(self, where: str = "DATA_DIR") -> None:
        super().__init__()
        self.where = where  # which disk to free, for the server's log only (never a path)


class LimitReachedError(ClipperError):
    """A limit of the caller's API key is reached; try again after `retry_after` seconds."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.code = code  # which limit: RATE_LIMITED, ACTIVE_JOBS_LIMIT, UPLOAD_QUOTA
        self.retry_after = max(1, retry_after)


class UnavailableError(ClipperError):
    """The service cannot reach its database right now; try again shortly."""

    code = "UNAVAILABLE"
    status = 503


class StorageUnavailableError(ClipperError):
    """The object storage (STORAGE_URL) refused or could not be reached; try again shortly."""

    code = "STORAGE_UNAVAILABLE"
    status = 503
