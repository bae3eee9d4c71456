"""Test media made with the wheel's FFmpeg: a test pattern, a tone, a keyframe every 2 s."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clipper.media.ffmpeg import ffmpeg_path
from clipper.media.sample import KEYFRAMES_EVERY_2S


def make_video(
    path: Path,
    seconds: int = 20,
    *,
    audio: bool = True,
    video: bool = True,
    audio_offset: float = 0.0,
    subtitles: str | None = None,
    size: str = "320x240",
) -> Path:
    """`audio_offset` starts the audio that many seconds late (a deliberately bad file);
    `subtitles` (SRT text) becomes an English subtitle track."""
    inputs: list[str] = []
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        inputs += ["-itsoffset", str(audio_offset)] if audio_offset else []
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    codecs: list[str] = []
    if video:  # keyframes exactly every 2 s, so copy and re-encode paths are predictable
        codecs += [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            *KEYFRAMES_EVERY_2S,
            "-pix_fmt",
            "yuv420p",
        ]
    if audio:
        codecs += ["-c:a", "aac"]
    if subtitles is not None:
        srt = path.with_suffix(".srt")
        srt.write_text(subtitles)
        inputs += ["-i", str(srt)]
        count = int(video) + int(audio)
        codecs = [
            *(arg for i in range(count + 1) for arg in ("-map", str(i))),
            *codecs,
            "-c:s",
            "mov_text",
            "-metadata:s:s:0",
            "language=eng",
        ]
    subprocess.run(
        [
            ffmpeg_path(),
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            *inputs,
            *codecs,
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path
