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


# A numbered video: each frame shows its number in binary, one 20-pixel-wide band per bit
# (white for 1, black for 0), from the lowest bit on the left. Wide bands with full contrast
# survive an H.264 re-encode, so a clip's frames can be read back to their source numbers.
_BAND = 20
_BITS = 10  # 1024 frames: 40 s at 25 fps
_WIDTH, _HEIGHT = _BAND * _BITS, 16


def make_numbered_video(path: Path, seconds: int) -> Path:
    """25 fps with a keyframe every 2 s (frames 0, 50, 100, …), and a tone."""
    bits = f"if(mod(floor(N/pow(2,floor(X/{_BAND}))),2),255,0)"
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
            f"color=black:size={_WIDTH}x{_HEIGHT}:rate=25:duration={seconds},"
            f"format=gray,geq=lum='{bits}'",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
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
    return path


def frame_numbers(path: Path) -> list[int]:
    """The number each frame of a clip of a numbered video shows, in order."""
    raw = subprocess.run(
        [ffmpeg_path(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    size = _WIDTH * _HEIGHT
    middle = _HEIGHT // 2 * _WIDTH  # the middle row, away from the edges' ringing
    return [
        sum(
            1 << bit
            for bit in range(_BITS)
            if raw[offset + middle + bit * _BAND + _BAND // 2] > 128
        )
        for offset in range(0, len(raw) - size + 1, size)
    ]


def make_hdr_video(path: Path, seconds: int = 3, *, size: str = "320x240") -> Path:
    """10-bit HEVC tagged HDR10 (BT.2020, PQ), with a tone: the kind of file a phone records.
    25 fps, a keyframe every 2 s; x265's fastest preset, to stay quick."""
    colour = "colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
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
            f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            f"log-level=error:keyint=50:min-keyint=50:{colour}",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
            "-tag:v",
            "hvc1",
            "-c:a",
            "aac",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path
