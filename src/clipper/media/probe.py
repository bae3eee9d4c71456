"""What a media file holds, read with PyAV (FFmpeg's libraries, from the `av` wheel) in a child
process (probe_child.py): FFmpeg's demuxers parse untrusted files, and a file that crashes,
hangs or subverts one must not do so inside the API or the worker, next to DATABASE_URL and
SIGNING_KEY. The child gets an empty environment, a memory limit and a time limit, and its
process group is killed when it runs over or the caller is cancelled; any failure of the
child is the same UnreadableMediaError as a file FFmpeg cannot read.

Starting an interpreter and FFmpeg's libraries costs ~65 ms, and a clip job probes three times:
so the children are forked by a server (probe_child.py's `serve`) started once per process, on
the first probe, which imports PyAV and then only forks. The server has the same isolation as
a child (no environment, cwd /, a session of its own) and never opens a file; each child
confines itself before it opens one. A server that is gone (killed, crashed) is replaced on the
next probe; the server ends when this process does (its socket to us closes). Linux only: the
server takes requests on a SOCK_SEQPACKET socket and reaps its children by pidfd."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptMediaError, TruncatedMediaError, UnreadableMediaError
from .inputs import MediaInput, input_options

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


async def probe(path: MediaInput, *, timeout_seconds: float = PROBE_TIMEOUT_SECONDS) -> MediaInfo:
    """What `path` holds; UnreadableMediaError unless it has a video or audio stream."""
    return _playable(await _describe(path, timeout_seconds))


async def probe_upload(path: MediaInput) -> MediaInfo | None:
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


async def frame_at(path: MediaInput, at_ms: int) -> FrameAt | None:
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


async def _describe(path: MediaInput, timeout_seconds: float) -> MediaInfo:
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
    video_codec, audio_codec = (None if c is None else c[:_NAME_LIMIT] for c in codecs)
    return MediaInfo(
        duration_ms=fields["duration_ms"],
        has_video=fields["has_video"],
        has_audio=fields["has_audio"],
        subtitle_streams=fields["subtitle_streams"],
        start_spread_ms=fields["start_spread_ms"],
        subtitle_languages=tuple(languages),
        video_codec=video_codec,
        audio_codec=audio_codec,
        width=fields["width"],
        height=fields["height"],
        bit_depth=fields["bit_depth"],
        hdr=fields["hdr"],
    )


_NUMBERS = ("duration_ms", "subtitle_streams", "start_spread_ms", "width", "height", "bit_depth")
_FLAGS = ("has_video", "has_audio", "hdr")
_CODECS = ("video_codec", "audio_codec")
_NAME_LIMIT = 32  # FFmpeg's codec names are short; a longer one is garbage, cut


def _absolute(path: MediaInput) -> str:
    """The child runs in /, and DATA_DIR is relative by default (to our own folder): it gets
    absolute paths (a URL goes as it is). Only a getcwd(): nothing that blocks the loop."""
    return os.path.abspath(path) if isinstance(path, Path) else path


async def _ask(
    path: MediaInput, command: str, *extra: str, timeout_seconds: float
) -> dict[str, object]:
    """Have a child of the probe server run `command` on `path` and return its answer; an
    unreadable file, a time-out, a crash or a garbled answer is UnreadableMediaError."""
    request = json.dumps(
        {
            "memory": PROBE_MEMORY_BYTES,
            "command": command,
            "path": _absolute(path),
            "arguments": list(extra),
            "options": input_options(path),
        }
    ).encode()
    try:
        async with asyncio.timeout(timeout_seconds):
            output, errors = await _exchange(request, path)
    except TimeoutError:
        logger.warning("probing %s took over %g s; killed", path, timeout_seconds)
        raise UnreadableMediaError(
            f"cannot read the input: reading it took over {timeout_seconds:g} s"
        ) from None
    # The server's word comes last, after the child has ended: its exit status. Without it
    # the server died, or the child wrote past the limit.
    body, newline, status = output.rpartition(b"\n")
    returncode = _exit_status(status) if newline else None
    if returncode != 0:
        logger.warning(
            "probing %s failed: the child exited with %s: %s",
            path,
            "no status" if returncode is None else returncode,
            errors.decode(errors="replace")[-_LOGGED_ERRORS:],
        )
        raise UnreadableMediaError("cannot read the input: reading it failed")
    try:
        answer = json.loads(body)
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
    full socket, and the parent never holds more than `limit`."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        kept += chunk[: limit - len(kept)]
    return bytes(kept)


# How long a killed child may take to be reaped (the server closes our socket once it has been)
# before we stop waiting: only a child that escaped its group could keep the socket open.
_REAP_SECONDS = 5.0


async def _exchange(request: bytes, path: MediaInput) -> tuple[bytes, bytes]:
    """What a child of the server answered `request` (after its pid line: its output, then the
    server's exit status) and what it wrote on stderr. A request the server dropped unread,
    because it was gone or going, is sent once more, to a new server: no child has read the
    file for it yet."""
    for _ in range(2):
        with contextlib.suppress(_ServerGone):
            return await _request(request)
    logger.warning("probing %s failed: the probe server ended before it answered", path)
    raise UnreadableMediaError("cannot read the input: reading it failed")


async def _request(request: bytes) -> tuple[bytes, bytes]:
    """One try at `request`: the server is sent the request and the far ends of two sockets,
    the child's stdout and stderr. _ServerGone when the server dropped it unread."""
    answer, answer_end = socket.socketpair()
    errors, errors_end = socket.socketpair()
    writers: list[asyncio.StreamWriter] = []
    try:
        # Readers first: once the request is sent, nothing may stop us reaching the `finally`
        # that kills its child.
        answer_reader, writer = await asyncio.open_connection(sock=answer)
        writers.append(writer)
        errors_reader, writer = await asyncio.open_connection(sock=errors)
        writers.append(writer)
        server = _send(request, [answer_end.fileno(), errors_end.fileno()])
    except BaseException:
        for writer in writers:
            writer.close()
        answer.close()
        errors.close()
        raise
    finally:
        answer_end.close()  # the server has its own copies now
        errors_end.close()
    pid: int | None = None
    introduced = False  # the pid line has been read (or what came instead of it)
    try:
        try:
            line = await answer_reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as ended:  # the end of the socket, before a newline
            if not ended.partial:  # no child wrote a byte, and neither did the server
                introduced = True
                _discard(server)
                raise _ServerGone from None
            line = ended.partial
        except asyncio.LimitOverrunError:  # no pid line: the rest tells what went wrong
            line = b""
        introduced = True
        pid = _pid(line)
        output, error_output = await asyncio.gather(
            _head(answer_reader, _OUTPUT_LIMIT), _head(errors_reader, _OUTPUT_LIMIT)
        )
        return (output if pid is not None else b""), error_output
    finally:
        # Shielded: a second cancellation must not stop the killing and reaping half-way.
        await asyncio.shield(_end(answer_reader, pid, introduced, writers))


async def _end(
    answer: asyncio.StreamReader,
    pid: int | None,
    introduced: bool,
    writers: list[asyncio.StreamWriter],
) -> None:
    """After a request, answered or not (timed out, or the caller was cancelled): its child's
    group killed if the child has not been reaped yet, the reaping waited for (the server closes
    our socket once it has reaped it), and our sockets closed."""
    try:
        if not answer.at_eof():
            async with asyncio.timeout(_REAP_SECONDS):
                if not introduced:  # sent, but cancelled before the child said who it is
                    with contextlib.suppress(
                        asyncio.IncompleteReadError, asyncio.LimitOverrunError
                    ):
                        pid = _pid(await answer.readuntil(b"\n"))
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                while await answer.read(1 << 16):
                    pass
    except TimeoutError:
        logger.warning("a killed probe child was not reaped within %g s", _REAP_SECONDS)
    finally:
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _pid(line: bytes) -> int | None:
    """The child's pid from its first line (written before it opened the file), if it is one."""
    digits = line.removesuffix(b"\n")
    if not (digits.isdigit() and len(digits) <= 10):
        return None
    pid = int(digits)
    return pid if pid > 1 else None


def _exit_status(status: bytes) -> int | None:
    """The exit status the server wrote after the child's output (-N: killed by signal N)."""
    try:
        return int(status) if len(status) <= 8 else None
    except ValueError:
        return None


class _ServerGone(Exception):
    """The probe server ended, or takes no requests, and dropped a request unread."""


@dataclass(frozen=True, slots=True, eq=False)
class _Server:
    process: subprocess.Popen[bytes]
    control: socket.socket  # our end of the socket it takes requests on (non-blocking)


# One server per process, shared by every event loop (each request has its own sockets, on its
# caller's loop). The lock is only held to look at or replace it, never across an await: the
# loops of several threads may probe at once.
_server: _Server | None = None
_server_lock = threading.Lock()


def _send(request: bytes, channels: list[int]) -> _Server:
    """Hand `request` and the `channels` to the server (started first if there is none, or it
    has ended), and return that server. A send never waits: it fits in the socket's buffer."""
    global _server
    with _server_lock:
        if _server is not None and _server.process.poll() is not None:  # it has ended: reaped
            _server.control.close()
            _server = None
        if _server is None:
            _server = _start_server()
        server = _server
    try:
        socket.send_fds(server.control, [request], channels, socket.MSG_NOSIGNAL)
    except OSError:  # it has ended (EPIPE), or has stopped taking requests (a full buffer)
        _discard(server)
        raise _ServerGone from None
    return server


def _start_server() -> _Server:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with theirs:
            process = subprocess.Popen(
                # Isolated: no PYTHON* variables, no user site, not the script's folder.
                [sys.executable, "-I", str(_CHILD), "serve", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # its children write to the sockets of requests
                env={},  # nothing of ours: no DATABASE_URL, SIGNING_KEY or any other secret
                cwd="/",
                start_new_session=True,  # out of our group: a Ctrl-C in a terminal is ours
                pass_fds=(theirs.fileno(),),
            )
    except BaseException:
        ours.close()
        raise
    # Never block the event loop: a server that stops reading is replaced (see _send).
    ours.setblocking(False)
    return _Server(process, ours)


def _discard(server: _Server) -> None:
    """Stop using `server`, which dropped a request or takes none: the next probe starts a new
    one. Its children, if any, die with it (their PDEATHSIG)."""
    global _server
    with _server_lock:
        if _server is server:
            _server = None
    _stop(server)


def _stop(server: _Server) -> None:
    server.control.close()
    server.process.kill()  # a no-op once it has been reaped
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=_REAP_SECONDS)  # killed: at once, in practice


@atexit.register
def _stop_at_exit() -> None:
    # Not needed for the server to end (its socket to us closes as we exit), but it leaves no
    # process behind for anyone who waits on our children.
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None:
        _stop(server)


def _garbled(path: MediaInput, what: str) -> UnreadableMediaError:
    logger.warning("probing %s gave a garbled answer (%s)", path, what)
    return UnreadableMediaError("cannot read the input: reading it failed")
