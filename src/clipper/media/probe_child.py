"""The probe's child process: FFmpeg's demuxers (through PyAV) parse an untrusted file here, in
a process of its own, never in the API or worker that hold DATABASE_URL and SIGNING_KEY.

Run by clipper.media.probe as a server, `python -I probe_child.py serve CONTROL_FD`,
by file path and in isolated mode, so it imports nothing of Clipper and reads no PYTHON*
variables. The server imports PyAV once and never opens a file itself: each request it takes
on the socket CONTROL_FD (a SOCK_SEQPACKET message: the request as JSON, and two sockets
passed with it) is answered by a child forked for it alone, which confines itself (`_confine`)
before it touches the file, and ends after the one answer. A fork costs a few milliseconds,
where starting an interpreter and importing PyAV cost ~65 ms. On the first socket the child
writes its pid and a newline (the caller kills its group by it), then its JSON answer; the
second socket is its stderr. Once the server has reaped the child, it adds a newline and the
child's exit status (a negative signal number for a crash) to the first socket, and closes it.

`python -I probe_child.py MEMORY_BYTES COMMAND PATH [AT_MS]` answers one request and exits
(by hand, to see what a file does to the child). Either way the answer is one JSON object:

- `describe`: {"info": {...the MediaInfo fields...}}, {"truncated": reason} (the header
  promises more than the file holds), {"corrupt": reason} (its first frame does not decode)
  or {"unreadable": reason}
- `frame`: {"frame": {"keyframe_ms", "frame_ms", "frame_duration_ms"} or null} or
  {"unreadable": reason}

A reason never names the file: PyAV's messages carry its path, so only FFmpeg's own
description of the error is passed on."""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import select
import signal
import socket
import sys
import traceback
from fractions import Fraction
from typing import Any, NoReturn

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _confine(memory_bytes: int) -> None:
    """Before the file is touched: soft and hard limits alike, so not even code the file
    subverts can raise them again; no core dump of a crash (it would hold the file's bytes);
    and death with the parent, whose time limit would otherwise no longer apply."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform == "linux":
        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the call: no signal will come
            sys.exit(1)


# FFmpeg's options for opening the input, as the request gives them (a URL's: bounded range
# requests on one connection, a read timeout); none for a file.
_open_options: dict[str, str] = {}


def _open(path: str) -> Any:
    import av

    return av.open(path, options=_open_options)


def _describe(path: str) -> dict[str, Any]:
    import av  # after _confine: loading FFmpeg's libraries counts against the limit too

    with _open(path) as container:
        streams = container.streams
        duration = container.duration
        if duration is None:  # some containers only know it per stream
            durations = [
                float(s.duration * s.time_base)
                for s in streams
                if s.duration is not None and s.time_base is not None
            ]
            seconds = max(durations, default=0.0)
        else:
            seconds = duration / av.time_base
        starts = [
            float(s.start_time * s.time_base)
            for s in (*streams.video, *streams.audio)
            if s.start_time is not None and s.time_base is not None
        ]
        video = streams.video[0] if streams.video else None
        audio = streams.audio[0] if streams.audio else None
        info: dict[str, Any] = {
            "duration_ms": int(seconds * 1000),
            "has_video": video is not None,
            "has_audio": audio is not None,
            "subtitle_streams": len(streams.subtitles),
            "start_spread_ms": int((max(starts) - min(starts)) * 1000) if starts else 0,
            "subtitle_languages": [s.language or "und" for s in streams.subtitles],
            # The codec's name ("av1", "mp3"), not its decoder's ("libdav1d", "mp3float").
            "video_codec": video.codec_context.codec.canonical_name if video else None,
            "audio_codec": audio.codec_context.codec.canonical_name if audio else None,
            "width": video.codec_context.width if video is not None else 0,
            "height": video.codec_context.height if video is not None else 0,
            "bit_depth": _bit_depth(video) if video is not None else 0,
            "hdr": video is not None and video.codec_context.color_trc in _HDR_TRANSFERS,
        }
    playable = video is not None or audio is not None
    if seconds > 0 and playable and (broken := _broken(path, seconds)) is not None:
        return broken
    return {"info": info}


# Transfer characteristics of HDR video (ITU-T H.273): SMPTE ST 2084 (PQ) and ARIB STD-B67
# (HLG). Anything else is SDR.
_HDR_TRANSFERS = frozenset({16, 18})
# How much of its stated duration a file may lack at its end: a last frame's or packet's
# length, and containers that round their duration up.
_MISSING_END_SECONDS = 1.0


def _bit_depth(stream: Any) -> int:
    """Bits per sample of the video's pixel format (8, 10, 12); 0 when it does not say."""
    import av

    name = stream.codec_context.pix_fmt
    if not name:
        return 0
    try:
        return int(max(component.bits for component in av.VideoFormat(name).components))
    except ValueError:
        return 0


def _broken(path: str, seconds: float) -> dict[str, str] | None:
    """Why the file's media does not hold what its header promises ({"corrupt": reason} or
    {"truncated": reason}), or None when it does: the first frame decodes, and packets reach
    the stated end (a truncated upload, or a download cut short, keeps a header that promises
    the whole file)."""
    import av

    with _open(path) as container:
        playable = [*container.streams.video[:1], *container.streams.audio[:1]]
        stream = playable[0]  # the video when there is one: seeking works by its keyframes
        try:
            decoded = next(iter(container.decode(stream)), None)
        except av.error.FFmpegError:
            decoded = None
        if decoded is None:
            return {"corrupt": "the file is corrupt: its first frame cannot be decoded"}
        time_base = stream.time_base
        if time_base is None:
            return None
        # The end is where the last packet stops: read the packets of the last few seconds.
        target = max(0.0, seconds - 2 * _MISSING_END_SECONDS - 3)
        container.seek(int(target / time_base), stream=stream, backward=True, any_frame=False)
        end = 0.0
        try:  # the audio too: it may run on after the video (or the video after it)
            for packet in container.demux(*playable):
                base = packet.stream.time_base
                if packet.pts is not None and base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * base))
        except av.error.FFmpegError:
            pass  # what was read so far is what the file holds
        starts = [
            float(s.start_time * s.time_base)
            for s in playable
            if s.start_time is not None and s.time_base is not None
        ]
        start = min(starts, default=0.0)
        if end - start < seconds - _MISSING_END_SECONDS:
            return {
                "truncated": f"the file is truncated: its media ends at {end - start:.1f} s "
                f"of the {seconds:.1f} s its header states"
            }
    return None


def _frame(path: str, at_ms: int) -> dict[str, Any]:
    """The video frame on screen at `at_ms` (the last one whose pts <= at_ms), its duration,
    and the last keyframe at or before it; null without video or before the first frame."""

    with _open(path) as container:
        if not container.streams.video:
            return {"frame": None}
        stream = container.streams.video[0]
        time_base = stream.time_base
        if time_base is None:
            return {"frame": None}
        at = Fraction(at_ms, 1000) / time_base  # in the stream's ticks, exactly
        # Seek lands on the keyframe at or before the target; read forward from there.
        container.seek(int(at), stream=stream, backward=True, any_frame=False)
        keyframe: int | None = None
        frame: int | None = None
        duration: int | None = None
        for packet in container.demux(stream):
            # Packets come in decode order: once one decodes after `at`, every later one also
            # shows after it (pts >= dts), while earlier ones may still show before (B-frames).
            if packet.dts is not None and packet.dts > at:
                break
            if packet.pts is None or packet.pts > at:
                continue
            if packet.is_keyframe and (keyframe is None or packet.pts > keyframe):
                keyframe = packet.pts
            if frame is None or packet.pts > frame:
                frame, duration = packet.pts, packet.duration
        if frame is None or keyframe is None:
            return {"frame": None}
        if not duration and stream.average_rate:  # no per-packet duration: the nominal rate
            seconds = 1 / Fraction(stream.average_rate)
        else:
            seconds = (duration or 0) * time_base
        return {
            "frame": {
                # Rounded so that seeking to it lands on it: input seeking decodes from the
                # keyframe at or before the time (so a keyframe's time is rounded up) and then
                # drops frames before the time (so a frame's time is rounded down).
                "keyframe_ms": math.ceil(keyframe * time_base * 1000),
                "frame_ms": math.floor(frame * time_base * 1000),
                "frame_duration_ms": round(seconds * 1000),
            }
        }


def _answer(command: str, path: str, arguments: list[str]) -> dict[str, Any]:
    import av

    try:
        if command == "describe":
            return _describe(path)
        return _frame(path, int(arguments[0]))
    except av.error.FFmpegError as exc:
        return {"unreadable": exc.strerror or "FFmpeg cannot read it"}
    except OSError as exc:
        return {"unreadable": exc.strerror or "it cannot be opened"}
    except ValueError:  # PyAV's word for values FFmpeg handed it that make no sense
        return {"unreadable": "it holds values FFmpeg cannot make sense of"}


# A request is a path and a few words (probe.py writes it); a longer message is dropped.
_REQUEST_LIMIT = 1 << 16


def _serve(control_fd: int) -> NoReturn:
    """Fork a child for each request on `control_fd` until the API or worker that started us
    is gone: then its end of the socket closes, even when it was SIGKILLed, and even when that
    happened before we got here. (That, not a PDEATHSIG, is our tie to it: a PDEATHSIG comes
    when the *thread* that started us ends, and a caller may probe from a short-lived thread's
    event loop.)"""
    import av  # noqa: F401  once, here: every child forked from now on starts with it loaded

    server = os.getpid()  # what a child's getppid() is while we live
    control = socket.socket(fileno=control_fd)
    poller = select.poll()
    poller.register(control, select.POLLIN)
    # pidfd -> (pid, the child's first socket): the status is written there once it is reaped.
    children: dict[int, tuple[int, socket.socket]] = {}
    while True:
        for fd, _events in poller.poll():
            if fd in children:
                pid, answer = children.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)  # it has ended: this does not block
                with contextlib.suppress(OSError):  # the caller gave up and closed its end
                    answer.sendall(b"\n%d" % os.waitstatus_to_exitcode(status))
                # The caller reads to the end of this socket: so its end comes after the reaping.
                answer.close()
                continue
            message, fds, flags, _address = socket.recv_fds(control, _REQUEST_LIMIT, 2)
            if not message and not fds:  # the end of the socket: our caller is gone
                os._exit(0)  # our children die with us (their PDEATHSIG)
            if len(fds) != 2 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                for received in fds:
                    os.close(received)
                continue
            answer_fd, errors_fd = fds
            try:
                request = json.loads(message)  # parsed here: never raised in a forked child
                pid = os.fork()
            except (ValueError, OSError):  # the caller sees its sockets close empty
                os.close(answer_fd)
                os.close(errors_fd)
                continue
            if pid == 0:
                _child(request, answer_fd, errors_fd, server=server)
            os.close(errors_fd)  # its end comes when the child exits; we keep the answer's
            pidfd = os.pidfd_open(pid)  # readable once the child has ended
            children[pidfd] = (pid, socket.socket(fileno=answer_fd))
            poller.register(pidfd, select.POLLIN)


def _child(request: dict[str, Any], answer_fd: int, errors_fd: int, server: int) -> NoReturn:
    """A forked child's one answer: never returns into the server's loop."""
    code = 1
    try:
        os.setsid()  # a session and group of its own, which the caller kills whole
        os.dup2(answer_fd, 1)
        os.dup2(errors_fd, 2)  # FFmpeg's and Python's messages go to the caller
        # Nothing of the server's and no other request's sockets: a child the file subverts
        # must not be able to read or write another caller's answer, or take requests.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.write(1, b"%d\n" % os.getpid())  # first, before anything that could hang
        _confine(int(request["memory"]))
        if os.getppid() != server:  # the server died before the PDEATHSIG was set
            os._exit(1)
        _open_options.update(request.get("options", {}))
        json.dump(_answer(request["command"], request["path"], request["arguments"]), sys.stdout)
        sys.stdout.flush()
        code = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)  # not a return: the server's loop, and its objects, are not ours


def main(argv: list[str]) -> int:
    if argv[0] == "serve":
        _serve(int(argv[1]))
    memory_bytes, command, path, *arguments = argv
    _confine(int(memory_bytes))
    json.dump(_answer(command, path, arguments), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
