"""Running FFmpeg: the binary from the imageio-ffmpeg wheel, progress from its own progress
output, a hard time limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from pathlib import Path

import imageio_ffmpeg

from .errors import FfmpegError, FfmpegTimeoutError

ProgressCallback = Callable[[float], Awaitable[None]]


@cache
def ffmpeg_path() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def segment_input(source: Path, start_ms: int, duration_ms: int) -> list[str]:
    """Seek into `source` and take `duration_ms` from there (input seeking: fast, and it
    shifts the segment's timestamps to start at zero)."""
    return [
        "-y",
        "-ss",
        f"{start_ms / 1000:.3f}",
        "-i",
        str(source),
        "-t",
        f"{duration_ms / 1000:.3f}",
    ]


async def run_ffmpeg(
    arguments: Sequence[str],
    *,
    duration_ms: int,
    on_progress: ProgressCallback,
    timeout_seconds: float,
) -> None:
    """Run FFmpeg to completion, reporting the share (0..1) of `duration_ms` written so far.
    Killed past `timeout_seconds` (FfmpegTimeoutError); a non-zero exit is FfmpegError."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    try:
        async with asyncio.timeout(timeout_seconds):
            async for line in process.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                if key == "out_time_us" and value.lstrip("-").isdigit() and duration_ms > 0:
                    await on_progress(min(1.0, max(0.0, int(value) / 1000 / duration_ms)))
            await process.wait()
    except TimeoutError:
        raise FfmpegTimeoutError(f"FFmpeg ran longer than {timeout_seconds:g} s") from None
    finally:
        if process.returncode is None:  # timed out, or the job was cancelled
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    errors = (await stderr).decode(errors="replace").strip()
    if process.returncode != 0:
        raise FfmpegError(f"FFmpeg exited with {process.returncode}: {errors[-500:]}")
