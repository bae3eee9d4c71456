"""The probe's child process: FFmpeg's demuxers (through PyAV) parse an untrusted file here, in
a process of its own, never in the API or worker that hold DATABASE_URL and SIGNING_KEY.

Run by clipper.media.probe as `python -I probe_child.py MEMORY_BYTES COMMAND PATH [AT_MS]`,
by file path and in isolated mode, so it imports nothing of Clipper and reads no PYTHON*
variables. It prints one JSON object on stdout:

- `describe`: {"info": {...the MediaInfo fields...}} or {"unreadable": reason}
- `keyframe`: {"keyframe_ms": int or null} or {"unreadable": reason}

A reason never names the file: PyAV's messages carry its path, so only FFmpeg's own
description of the error is passed on."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
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


def _keyframe(path: str, at_ms: int) -> dict[str, Any]:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            return {"keyframe_ms": None}
        stream = container.streams.video[0]
        time_base = stream.time_base
        if time_base is None:
            return {"keyframe_ms": None}
        # Seek lands on the keyframe at or before the target; read forward to confirm it.
        container.seek(int(at_ms / 1000 / time_base), stream=stream, backward=True, any_frame=False)
        best: int | None = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            at = int(packet.pts * time_base * 1000)
            if at > at_ms:
                break
            if packet.is_keyframe:
                best = at
        return {"keyframe_ms": best}


def _answer(command: str, path: str, arguments: list[str]) -> dict[str, Any]:
    import av

    try:
        if command == "describe":
            return _describe(path)
        return _keyframe(path, int(arguments[0]))
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
