"""Which job failures are permanent: retrying cannot help, so the job fails at once.

Media, fetch and the services raise errors of their own, each with a machine-readable `code`
(the code a failed job reports, docs/api.md). The one table below names the codes that skip
the remaining attempts; the job runner hands such a failure to the queue as a PermanentError.
Every other failure is retried with backoff, up to QUEUE_MAX_ATTEMPTS runs in all."""

from __future__ import annotations

from ..fetch.download import FetchRefusedError, SourceTooLargeError
from ..fetch.extract import UnsupportedUrlError
from ..fetch.guard import ForbiddenUrlError
from ..media.errors import (
    MissingSourceError,
    SegmentOutOfRangeError,
    SubtitleFontsMissingError,
    SubtitlesMissingError,
    UnreadableMediaError,
)
from ..queue import PermanentError


class NoProcessorError(Exception):
    """This worker has no processor for the job's source type (URL sources while
    ENABLE_YTDLP is off on the worker)."""

    code = "NO_PROCESSOR"


class SourceTooLongError(Exception):
    """The source lasts longer than MAX_CLIP_INPUT_DURATION_SEC."""

    code = "SOURCE_TOO_LONG"


# The job's own request, its source, or this worker's setup is at fault: another attempt
# would meet the same answer. Named through the classes, so a renamed code cannot drift.
PERMANENT_CODES = frozenset(
    {
        UnreadableMediaError.code,
        SegmentOutOfRangeError.code,
        SubtitlesMissingError.code,
        SubtitleFontsMissingError.code,
        MissingSourceError.code,
        SourceTooLongError.code,
        SourceTooLargeError.code,
        ForbiddenUrlError.code,
        UnsupportedUrlError.code,
        FetchRefusedError.code,
        NoProcessorError.code,
    }
)


class PermanentJobError(PermanentError):
    """A failure with a permanent code, as the queue is handed it: dead-lettered at once,
    keeping the original's code and message (what the failed job reports)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def permanent_failure(error: BaseException) -> PermanentJobError | None:
    """`error` as a PermanentError when its code is in the table; None when another attempt
    may succeed."""
    code = getattr(error, "code", None)  # duck-typed, as the queue reads codes too
    if not isinstance(code, str) or code not in PERMANENT_CODES:
        return None
    return PermanentJobError(str(error), code)
