"""The user's, the setup's, or worth another attempt: decided by the error's code."""

from __future__ import annotations

import pytest

from clipper.fetch.download import FetchFailedError, FetchRefusedError, SourceTooLargeError
from clipper.fetch.guard import ForbiddenUrlError
from clipper.media.errors import (
    CorruptMediaError,
    FfmpegError,
    InvalidOutputError,
    SegmentOutOfRangeError,
    SpeechFailedError,
    SpeechLanguageError,
    SpeechModelError,
    SubtitleFontsMissingError,
    TruncatedMediaError,
    UnreadableMediaError,
)
from clipper.queue import PermanentError
from clipper.services.failures import (
    NoProcessorError,
    SourceTooLongError,
    UserFailure,
    classify_failure,
)


@pytest.mark.parametrize(
    "error",
    [
        UnreadableMediaError("not a video"),
        TruncatedMediaError("the file is truncated"),
        CorruptMediaError("the file is corrupt"),
        SegmentOutOfRangeError("the segment ends at 12 s but the source lasts 10 s"),
        ForbiddenUrlError("10.0.0.1 is private"),
        FetchRefusedError("the source answered HTTP 404"),
        SourceTooLargeError("the source is over 100 bytes"),
        SourceTooLongError("the source lasts 3 h"),
        SpeechLanguageError("speech recognition here transcribes English (en) only, not de"),
    ],
)
def test_a_users_code_becomes_a_user_failure_with_the_same_code_and_message(
    error: Exception,
) -> None:
    failure = classify_failure(error)
    assert isinstance(failure, UserFailure)
    assert not isinstance(failure, PermanentError)  # never handed to the queue: no dead letter
    assert (failure.code, str(failure)) == (getattr(error, "code", None), str(error))


@pytest.mark.parametrize(
    "error",
    [
        NoProcessorError("no processor for youtube sources"),
        SubtitleFontsMissingError("no fonts"),
        SpeechModelError("this server's speech model could not be loaded"),
    ],
)
def test_a_setup_code_becomes_a_permanent_error_with_the_same_code_and_message(
    error: Exception,
) -> None:
    permanent = classify_failure(error)
    assert isinstance(permanent, PermanentError)
    assert (getattr(permanent, "code", None), str(permanent)) == (
        getattr(error, "code", None),
        str(error),
    )


@pytest.mark.parametrize(
    "error",
    [
        FetchFailedError("the source answered HTTP 503"),
        FfmpegError("ffmpeg crashed"),
        InvalidOutputError("the clip lasts 0 s"),
        SpeechFailedError("speech recognition failed"),
        OSError("disk full"),  # no code at all
    ],
)
def test_other_failures_are_left_to_retry(error: Exception) -> None:
    assert classify_failure(error) is None
