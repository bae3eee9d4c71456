"""The probe's child process: FFmpeg's demuxers (through PyAV) parse an untrusted file here, in
a process of its own, never in the API or worker that hold DATABASE_URL and SIGNING_KEY.

Run by clipper.media.probe as `python -I probe_child.py MEMORY_BYTES COMMAND PATH [AT_MS]`,
by file path and in isolated mode, so it imports nothing of Clipper and reads no PYTHON*
variables. It prints one JSON object on stdout:

- `describe`: {"info": {...the MediaInfo fields...}} or {"unreadable": reason}
- `frame`: {"frame": {"keyframe_ms", "frame_ms", "frame_duration_ms"} or null} or
  {"unreadable": reason}

A reason never names the file: PyAV's messages carry its path, so only FFmpeg's own
description of the error is passed on."""

from __future__ import annotations

import ctypes
import json
import math
import os
import resource
import signal
import sys
from fractions import Fraction
from typing import Any

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


def _describe(path: str) -> dict[str, Any]:
    import av  # after _confine: loading FFmpeg's libraries counts against the limit too

    with av.open(path) as container:
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
        return {
            "info": {
                "duration_ms": int(seconds * 1000),
                "has_video": bool(streams.video),
                "has_audio": bool(streams.audio),
                "subtitle_streams": len(streams.subtitles),
                "start_spread_ms": int((max(starts) - min(starts)) * 1000) if starts else 0,
                "subtitle_languages": [s.language or "und" for s in streams.subtitles],
            }
        }


def _frame(path: str, at_ms: int) -> dict[str, Any]:
    """The video frame on screen at `at_ms` (the last one whose pts <= at_ms), its duration,
    and the last keyframe at or before it; null without video or before the first frame."""
    import av

    with av.open(path) as container:
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


def main(argv: list[str]) -> int:
    memory_bytes, command, path, *arguments = argv
    _confine(int(memory_bytes))
    json.dump(_answer(command, path, arguments), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
