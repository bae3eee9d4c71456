"""Permanent or worth another attempt: decided by the error's code, in one table."""

from __future__ import annotations

import pytest

from clipper.fetch.download import FetchFailedError, FetchRefusedError, SourceTooLargeError
from clipper.fetch.guard import ForbiddenUrlError
from clipper.media.errors import FfmpegError, InvalidOutputError, UnreadableMediaError
from clipper.queue import PermanentError
from clipper.services.failures import NoProcessorError, SourceTooLongError, permanent_failure


@pytest.mark.parametrize(
    "error",
    [
        UnreadableMediaError("not a video"),
        ForbiddenUrlError("10.0.0.1 is private"),
        FetchRefusedError("the source answered HTTP 404"),
        SourceTooLargeError("the source is over 100 bytes"),
        SourceTooLongError("the source lasts 3 h"),
        NoProcessorError("no processor for youtube sources"),
    ],
)
def test_a_permanent_code_becomes_a_permanent_error_with_the_same_code_and_message(
    error: Exception,
) -> None:
    permanent = permanent_failure(error)
    assert isinstance(permanent, PermanentError)
    assert (permanent.code, str(permanent)) == (getattr(error, "code", None), str(error))


@pytest.mark.parametrize(
    "error",
    [
        FetchFailedError("the source answered HTTP 503"),
        FfmpegError("ffmpeg crashed"),
        InvalidOutputError("the clip lasts 0 s"),
        OSError("disk full"),  # no code at all
    ],
)
def test_other_failures_are_left_to_retry(error: Exception) -> None:
    assert permanent_failure(error) is None
