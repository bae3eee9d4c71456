"""A sample video for trying Clipper: test pattern and tone, a keyframe every 2 s."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .ffmpeg import ffmpeg_path

# A keyframe exactly every 2 s at 25 fps, so stream-copy cuts are predictable.
KEYFRAMES_EVERY_2S = ["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]


def write_sample_video(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            ffmpeg_path(),
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=640x360:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            *KEYFRAMES_EVERY_2S,
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
