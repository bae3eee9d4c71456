"""The images a clip may come with, made from the clip itself (so they show what it shows,
scaled and tone-mapped as it is): a thumbnail, a JPEG of one frame; a preview, a short, small
animated GIF or WebP of its start. Each is read back before it counts."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from pathlib import Path

from ..domain.outputs import PreviewFormat
from .errors import FfmpegError, InvalidOutputError
from .ffmpeg import decoded_frames, ignore_progress, run_ffmpeg
from .outputs import PREVIEW_ENCODERS, TONE_MAP_FILTER
from .probe import frame_at

# A preview: the clip's first seconds, at a few frames a second, no wider than this.
PREVIEW_SECONDS = 3
PREVIEW_FPS = 10
PREVIEW_MAX_WIDTH = 320

THUMBNAIL_NAME = "poster.jpg"


def preview_name(kind: PreviewFormat) -> str:
    return f"preview.{kind.extension}"


async def make_thumbnail(
    clip: Path, at_ms: int, output: Path, *, hdr: bool, timeout_seconds: float
) -> None:
    """A JPEG of the clip's frame on screen at `at_ms` (0: its first frame), at the clip's
    size; an HDR clip's tone-mapped (a JPEG is SDR)."""
    # Seeking to a time starts on the first frame at or after it: seek to the frame's own.
    frame = await frame_at(clip, at_ms)
    seek_ms = at_ms if frame is None else frame.frame_ms
    tone = ["-vf", TONE_MAP_FILTER] if hdr else []
    await run_ffmpeg(
        [
            "-y",
            "-ss",
            f"{seek_ms / 1000:.3f}",
            "-i",
            str(clip),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            *tone,
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",  # of 2 (best) to 31: a sharp poster of a few tens of kB
            "-f",
            "image2",
            "-update",
            "1",
            str(output),
        ],
        duration_ms=0,
        on_progress=ignore_progress,
        timeout_seconds=timeout_seconds,
    )
    facts = await inspect_image(output, timeout_seconds=timeout_seconds)
    if facts.kind != "jpeg" or facts.frames != 1 or not facts.width:
        raise InvalidOutputError(f"the thumbnail is no JPEG of one frame ({facts})")


async def make_preview(
    clip: Path,
    kind: PreviewFormat,
    clip_ms: int,
    output: Path,
    *,
    hdr: bool,
    timeout_seconds: float,
) -> None:
    """An endlessly looping animation of the clip's first PREVIEW_SECONDS (all of a shorter
    clip) at PREVIEW_FPS, at most PREVIEW_MAX_WIDTH wide (never scaled up, aspect kept).
    `clip_ms`: how long the clip lasts."""
    frames = [TONE_MAP_FILTER] if hdr else []
    frames += [
        f"fps={PREVIEW_FPS}",
        f"scale=w='min(iw,{PREVIEW_MAX_WIDTH})':h=-2:flags=lanczos",
    ]
    if kind is PreviewFormat.GIF:
        # One palette for the whole preview, from the pixels that change: GIF has 256 colours.
        filters = ",".join(frames) + (
            ",split[a][b];[a]palettegen=max_colors=128:stats_mode=diff[p];"
            "[b][p]paletteuse=dither=bayer:bayer_scale=4"
        )
        codec = ["-c:v", PREVIEW_ENCODERS[kind]]
    else:
        filters = ",".join(frames)
        codec = ["-c:v", PREVIEW_ENCODERS[kind], "-quality", "60", "-compression_level", "4"]
    await run_ffmpeg(
        [
            "-y",
            "-t",
            str(PREVIEW_SECONDS),
            "-i",
            str(clip),
            "-map",
            "0:v:0",
            "-vf",
            filters,
            *codec,
            "-loop",
            "0",
            "-f",
            kind.value,
            str(output),
        ],
        duration_ms=min(clip_ms, PREVIEW_SECONDS * 1000),
        on_progress=ignore_progress,
        timeout_seconds=timeout_seconds,
    )
    facts = await inspect_image(output, timeout_seconds=timeout_seconds)
    # 10 frames a second: a clip of 0.2 s or more makes two or more.
    least = 2 if clip_ms >= 2 * 1000 // PREVIEW_FPS else 1
    if facts.kind != kind.value or facts.frames < least or facts.width > PREVIEW_MAX_WIDTH:
        raise InvalidOutputError(f"the preview is no small animated {kind} ({facts})")


@dataclass(frozen=True, slots=True)
class ImageFacts:
    kind: str | None  # "jpeg", "gif" or "webp"; None: none of them
    width: int
    height: int
    frames: int  # as many as FFmpeg decodes


async def inspect_image(path: Path, *, timeout_seconds: float) -> ImageFacts:
    """What an image Clipper wrote is: its format and size from its header, and how many
    frames it holds, decoding it whole (a file that does not decode is InvalidOutputError)."""
    header = await asyncio.to_thread(_head, path)
    kind, width, height = image_header(header)
    try:
        frames = await decoded_frames(path, timeout_seconds=timeout_seconds)
    except FfmpegError as exc:
        raise InvalidOutputError(f"the image does not decode: {exc}") from exc
    return ImageFacts(kind, width, height, frames)


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(65536)


def image_header(data: bytes) -> tuple[str | None, int, int]:
    """(format, width, height) from the start of a JPEG, GIF or WebP file; (None, 0, 0) for
    anything else. Only the containers' own headers: decoding is FFmpeg's."""
    if data.startswith(b"\xff\xd8\xff"):
        return ("jpeg", *_jpeg_size(data))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X":
        # The extended header: flags, 3 reserved bytes, then canvas width-1, height-1 (24-bit).
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return "webp", width, height
    return None, 0, 0


# The start-of-frame markers (baseline, progressive, ...): every one but DHT, JPG and DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return 0, 0
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return 0, 0
