"""Which job failures are worth another attempt, and whose they are.

Media, fetch and the services raise errors of their own, each with a machine-readable `code`
(the code a failed job reports, docs/api.md). Two tables below sort the codes that retrying
cannot help:
- the user's: the request or its source is at fault (a range past the source's end, a file
  that turns out truncated). The job fails at once, without a dead letter or an alert: the
  user reads the code and fixes the request; no operator has anything to do.
- the setup's: this worker cannot run the job (no fonts to burn subtitles with, a speech
  model that does not load, no processor for its source type). The job is dead-lettered at
  once and the alert fires: an operator must fix the deployment, then may redrive it.
Every other failure is retried with backoff, up to QUEUE_MAX_ATTEMPTS runs in all, and is
dead-lettered (with the alert) when they are used up: a failure of the system."""

from __future__ import annotations

from ..fetch.download import FetchRefusedError, SourceTooLargeError
from ..fetch.extract import UnsupportedUrlError
from ..fetch.guard import ForbiddenUrlError
from ..media.errors import (
    CorruptMediaError,
    MissingSourceError,
    OutputUnsupportedError,
    SegmentOutOfRangeError,
    SpeechLanguageError,
    SpeechModelError,
    SubtitleFontsMissingError,
    SubtitlesMissingError,
    TruncatedMediaError,
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


# The request or its source is at fault. Named through the classes, so a renamed code cannot
# drift.
USER_CODES = frozenset(
    {
        UnreadableMediaError.code,
        TruncatedMediaError.code,
        CorruptMediaError.code,
        SegmentOutOfRangeError.code,
        SubtitlesMissingError.code,
        MissingSourceError.code,
        SourceTooLongError.code,
        SourceTooLargeError.code,
        ForbiddenUrlError.code,
        UnsupportedUrlError.code,
        FetchRefusedError.code,
        OutputUnsupportedError.code,
        SpeechLanguageError.code,
    }
)

# This worker's setup is at fault: another attempt here would meet the same answer.
SETUP_CODES = frozenset(
    {SubtitleFontsMissingError.code, SpeechModelError.code, NoProcessorError.code}
)


class UserFailure(Exception):
    """A failure with a user's code: the job fails with it at once, no dead letter."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class PermanentJobError(PermanentError):
    """A failure with a setup's code, as the queue is handed it: dead-lettered at once,
    keeping the original's code and message (what the failed job reports)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def classify_failure(error: BaseException) -> UserFailure | PermanentJobError | None:
    """`error` as a UserFailure or a PermanentJobError when its code is in a table; None when
    another attempt may succeed."""
    code = getattr(error, "code", None)  # duck-typed, as the queue reads codes too
    if not isinstance(code, str):
        return None
    if code in USER_CODES:
        return UserFailure(str(error), code)
    if code in SETUP_CODES:
        return PermanentJobError(str(error), code)
    return None
