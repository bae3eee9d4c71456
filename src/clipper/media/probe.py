"""What a media file holds, read with PyAV (FFmpeg's libraries, from the `av` wheel) in a child
process (probe_child.py): FFmpeg's demuxers parse untrusted files, and a file that crashes,
hangs or subverts one must not do so inside the API or the worker, next to DATABASE_URL and
SIGNING_KEY. The child gets an empty environment, a memory limit and a time limit, and its
process group is killed when it runs over or the caller is cancelled; any failure of the
child is the same UnreadableMediaError as a file FFmpeg cannot read.

Starting the child costs about 50 ms per call (an interpreter and FFmpeg's libraries), so
the upload route asks its two questions in one call (`probe_upload`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptMediaError, TruncatedMediaError, UnreadableMediaError

logger = logging.getLogger("clipper.media")

# Generous: a probe reads headers and an index, well under a second even for a large upload;
# only a hostile or broken file (or a starved machine) gets near it.
PROBE_TIMEOUT_SECONDS = 20.0
# Address space, not resident memory: the interpreter and FFmpeg's libraries map ~120 MiB.
PROBE_MEMORY_BYTES = 1 << 30

_CHILD = Path(__file__).with_name("probe_child.py")
# A well-behaved child prints a few hundred bytes; more is garbage, never held in the parent.
_OUTPUT_LIMIT = 1 << 20
_LOGGED_ERRORS = 2000  # characters of the child's stderr a failure logs
_REASON_LIMIT = 200


@dataclass(frozen=True, slots=True)
class MediaInfo:
    duration_ms: int
    has_video: bool
    has_audio: bool
    subtitle_streams: int
    # How far apart the audio and video streams start (0 with one of them): a sync check.
    start_spread_ms: int = 0
    # Language tags of the subtitle streams, in order ("und" when untagged).
    subtitle_languages: tuple[str, ...] = ()
    # FFmpeg's names of the first video and audio streams' codecs ("h264", "opus").
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int = 0
    height: int = 0
    bit_depth: int = 0  # bits per sample of the video (8, 10, 12); 0: no video, or unknown
    hdr: bool = False  # PQ or HLG transfer: HDR video

    @property
    def subtitles_only(self) -> bool:
        return self.subtitle_streams > 0 and not (self.has_video or self.has_audio)


async def probe(path: Path, *, timeout_seconds: float = PROBE_TIMEOUT_SECONDS) -> MediaInfo:
    """What `path` holds; UnreadableMediaError unless it has a video or audio stream."""
    return _playable(await _describe(path, timeout_seconds))


async def probe_upload(path: Path) -> MediaInfo | None:
    """The upload route's two questions in one child: None for a file that holds subtitles
    only (an .srt sidecar), else what `probe` answers."""
    info = await _describe(path, PROBE_TIMEOUT_SECONDS)
    return None if info.subtitles_only else _playable(info)


@dataclass(frozen=True, slots=True)
class FrameAt:
    """The video frame on screen at a time, and the keyframe a decoder starts it from."""

    frame_ms: int  # its pts, rounded down: seeking there starts on it
    duration_ms: int  # how long it is on screen (0 when the file does not say)
    keyframe_ms: int  # the last keyframe at or before it, rounded up: seeking there lands on it


async def frame_at(path: Path, at_ms: int) -> FrameAt | None:
    """The frame on screen at `at_ms` (the last one whose pts <= at_ms); None without video
    or before its first frame."""
    answer = await _ask(path, "frame", str(at_ms), timeout_seconds=PROBE_TIMEOUT_SECONDS)
    fields = answer.get("frame")
    if fields is None:
        return None
    names = ("frame_ms", "frame_duration_ms", "keyframe_ms")
    # The child parsed hostile input: its answer is checked like any untrusted data.
    if not isinstance(fields, dict) or not all(type(fields.get(name)) is int for name in names):
        raise _garbled(path, "frame")
    return FrameAt(fields["frame_ms"], fields["frame_duration_ms"], fields["keyframe_ms"])


def _playable(info: MediaInfo) -> MediaInfo:
    if not (info.has_video or info.has_audio) or info.duration_ms <= 0:
        raise UnreadableMediaError("the input has no video or audio stream")
    return info


async def _describe(path: Path, timeout_seconds: float) -> MediaInfo:
    fields = (await _ask(path, "describe", timeout_seconds=timeout_seconds)).get("info")
    # The child parsed hostile input: its answer is checked like any untrusted data.
    if not isinstance(fields, dict):
        raise _garbled(path, "info")
    languages = fields.get("subtitle_languages")
    numbers = [fields.get(key) for key in _NUMBERS]
    flags = [fields.get(key) for key in _FLAGS]
    codecs = [fields.get(key) for key in _CODECS]
    if (
        not all(type(number) is int for number in numbers)
        or not all(type(flag) is bool for flag in flags)
        or not all(codec is None or isinstance(codec, str) for codec in codecs)
        or not isinstance(languages, list)
        or not all(isinstance(language, str) for language in languages)
    ):
        raise _garbled(path, "info")
    return MediaInfo(
        **{key: fields[key] for key in (*_NUMBERS, *_FLAGS)},
        **{key: None if fields[key] is None else fields[key][:_NAME_LIMIT] for key in _CODECS},
        subtitle_languages=tuple(languages),
    )


_NUMBERS = ("duration_ms", "subtitle_streams", "start_spread_ms", "width", "height", "bit_depth")
_FLAGS = ("has_video", "has_audio", "hdr")
_CODECS = ("video_codec", "audio_codec")
_NAME_LIMIT = 32  # FFmpeg's codec names are short; a longer one is garbage, cut


def _absolute(path: Path) -> str:
    """The child runs in /, and DATA_DIR is relative by default (to our own folder): it gets
    absolute paths. (Only a getcwd(): nothing that blocks the event loop.)"""
    return os.path.abspath(path)


async def _ask(path: Path, command: str, *extra: str, timeout_seconds: float) -> dict[str, object]:
    """Run the child's `command` on `path` and return its answer; an unreadable file, a
    time-out, a crash or a garbled answer is UnreadableMediaError."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # isolated: no PYTHON* variables, no user site, not the script's folder
        str(_CHILD),
        str(PROBE_MEMORY_BYTES),
        command,
        _absolute(path),
        *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={},  # nothing of ours: no DATABASE_URL, SIGNING_KEY or any other secret
        cwd="/",
        start_new_session=True,  # its own group, killed whole
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with asyncio.timeout(timeout_seconds):
            output, errors = await asyncio.gather(
                _head(process.stdout, _OUTPUT_LIMIT), _head(process.stderr, _OUTPUT_LIMIT)
            )
            await process.wait()
    except TimeoutError:
        logger.warning("probing %s took over %g s; killed", path, timeout_seconds)
        raise UnreadableMediaError(
            f"cannot read the input: reading it took over {timeout_seconds:g} s"
        ) from None
    finally:
        if process.returncode is None:  # timed out, or the caller was cancelled
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        # Shielded: a second cancellation must not stop the reaping half-way.
        await asyncio.shield(process.wait())
    if process.returncode != 0:
        logger.warning(
            "probing %s failed: the child exited with %s: %s",
            path,
            process.returncode,
            errors.decode(errors="replace")[-_LOGGED_ERRORS:],
        )
        raise UnreadableMediaError("cannot read the input: reading it failed")
    try:
        answer = json.loads(output)
    except ValueError:
        raise _garbled(path, "JSON") from None
    if not isinstance(answer, dict):
        raise _garbled(path, "JSON")
    reason = answer.get("unreadable")
    if isinstance(reason, str):
        raise UnreadableMediaError(f"cannot read the input: {reason[:_REASON_LIMIT]}")
    for kind, error in (("truncated", TruncatedMediaError), ("corrupt", CorruptMediaError)):
        if isinstance(broken := answer.get(kind), str):
            raise error(broken[:_REASON_LIMIT])
    return answer


async def _head(stream: asyncio.StreamReader, limit: int) -> bytes:
    """The first `limit` bytes of `stream`, read to its end: the child is never blocked on a
    full pipe, and the parent never holds more than `limit`."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _garbled(path: Path, what: str) -> UnreadableMediaError:
    logger.warning("probing %s gave a garbled answer (%s)", path, what)
    return UnreadableMediaError("cannot read the input: reading it failed")
