"""Media failures, each with the code a failed job reports. Which of them are worth another
attempt is decided by the services, from the code (clipper.services.failures)."""

from __future__ import annotations


class UnreadableMediaError(Exception):
    """The input is not a readable video or audio file."""

    code = "UNREADABLE_INPUT"


class TruncatedMediaError(UnreadableMediaError):
    """The file's header promises more than it holds: an upload or a download cut short."""

    code = "SOURCE_TRUNCATED"


class CorruptMediaError(UnreadableMediaError):
    """The file opens, but its first frame does not decode."""

    code = "SOURCE_CORRUPT"


class SegmentOutOfRangeError(Exception):
    """The requested segment lies outside the source."""

    code = "SEGMENT_OUT_OF_RANGE"


class SubtitlesMissingError(Exception):
    """The subtitles to cut are not valid SRT (an uploaded sidecar, or what FFmpeg made of
    the source's track)."""

    code = "SUBTITLES_MISSING"


class SubtitleFontsMissingError(Exception):
    """Burning subtitles needs fonts, and no fonts folder was found (SUBTITLE_FONTS_DIR)."""

    code = "SUBTITLE_FONTS_MISSING"


class MissingSourceError(Exception):
    """The uploaded source no longer exists."""

    code = "SOURCE_MISSING"


class FfmpegError(Exception):
    """FFmpeg failed on input it could read (a full disk, a crash)."""

    code = "FFMPEG_FAILED"


class FfmpegTimeoutError(FfmpegError):
    """FFmpeg ran past CLIP_MAX_RUNTIME_SEC and was killed."""

    code = "FFMPEG_TIMEOUT"


class InvalidOutputError(Exception):
    """The clip FFmpeg wrote does not match the request: a failed attempt, never a done job."""

    code = "OUTPUT_INVALID"


class OutputUnsupportedError(Exception):
    """The output asked for cannot be made from this source (a 10-bit HDR source in H.264, a
    fast cut that would need a re-encode, an audio-only clip of a source without audio), or
    with this FFmpeg (no encoder for the codec). `field`: the output choice at fault, by its
    name in the request's `output` (e.g. `videoCodec`)."""

    code = "OUTPUT_UNSUPPORTED"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"output.{field}: {reason}")  # what a failed job reports
        self.field = field
        self.reason = reason


class SpeechModelError(Exception):
    """The speech model (ASR_MODEL) cannot be loaded on this worker: missing, corrupt, or
    faster-whisper is not installed (the `asr` extra)."""

    code = "ASR_MODEL_UNAVAILABLE"


class SpeechFailedError(Exception):
    """The speech model failed while transcribing a clip's audio (worth another attempt)."""

    code = "ASR_FAILED"


class SpeechLanguageError(Exception):
    """The clip needs subtitles from speech in a language the configured model cannot do."""

    code = "SUBTITLE_LANG_UNSUPPORTED"
