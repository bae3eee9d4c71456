"""Source videos for the fault tests, made with the wheel's FFmpeg: a test pattern and a tone,
a keyframe every 2 s, so a clip starting between keyframes is re-encoded (long enough for a
fault to land mid-cut)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.sample import KEYFRAMES_EVERY_2S


def make_source(path: Path, *, seconds: int, size: str) -> Path:
    lavfi = f"size={size}:rate=25:duration={seconds}"
    subprocess.run(
        [
            ffmpeg_path(),
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            *("-f", "lavfi", "-i", f"testsrc2={lavfi}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", *KEYFRAMES_EVERY_2S),
            *("-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)),
        ],
        check=True,
    )
    return path
